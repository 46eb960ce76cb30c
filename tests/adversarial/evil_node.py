"""``python -m tests.adversarial.evil_node PATCH serve ...``: a node with one function patched.

The patch is a function in ``tests/adversarial/patches.py`` that replaces one
function or method of ``mpc_backend`` before the CLI starts; its arguments come
as JSON in ``HEARTH_EVIL_ARGS``. Everything else is the unmodified node, as a
member running a modified build would be.
"""

from __future__ import annotations

import json
import os
import sys

from mpc_backend.cli import main
from tests.adversarial import patches


def run() -> int:
    name, *args = sys.argv[1:]
    apply = getattr(patches, name, None)
    if apply is None or name.startswith("_"):
        sys.stderr.write(f"unknown patch {name!r}\n")
        return 2
    apply(**json.loads(os.environ.get("HEARTH_EVIL_ARGS") or "{}"))
    sys.argv = ["mpc-backend", *args]
    return main()


if __name__ == "__main__":
    sys.exit(run())
