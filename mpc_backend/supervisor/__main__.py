"""``python -m mpc_backend.supervisor``: the app's start script (see ``start``)."""

import sys

from mpc_backend.supervisor.start import main

sys.exit(main())
