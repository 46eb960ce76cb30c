"""``python -m mpc_backend`` is the ``mpc-backend`` command."""

import sys

from mpc_backend.cli import main

sys.exit(main())
