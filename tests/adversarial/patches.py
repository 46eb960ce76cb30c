"""The misbehaviours: each function patches one piece of an otherwise honest node.

Every patch logs ``EVIL <name>`` when it acts, so a test can tell the attack was
really attempted (a defence that is never exercised proves nothing).
"""

from __future__ import annotations

import logging

log = logging.getLogger("mpc_backend.evil")
