"""Logging for ``serve``: stderr, one line per event (tracebacks folded onto the line)."""

from __future__ import annotations

import logging
import sys


class OneLineFormatter(logging.Formatter):
    def formatException(self, ei) -> str:
        return " | ".join(super().formatException(ei).splitlines())

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
