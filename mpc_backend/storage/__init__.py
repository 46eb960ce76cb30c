"""Durable node state behind one interface (``Storage``); SQLite is the embedded default."""

from pathlib import Path

from .base import (
    Contribution,
    Delivery,
    InviteStatus,
    Misbehaviour,
    PutOutcome,
    ResultRecord,
    RoundCommit,
    ShareRecord,
    Storage,
)
from .sqlite import DB_FILE_NAME, SQLiteStorage


def open_storage(data_dir: Path) -> Storage:
    """The storage for a data dir (not yet opened: call ``await storage.open()``)."""
    return SQLiteStorage(data_dir)


__all__ = [
    "DB_FILE_NAME",
    "Contribution",
    "Delivery",
    "InviteStatus",
    "Misbehaviour",
    "PutOutcome",
    "ResultRecord",
    "RoundCommit",
    "SQLiteStorage",
    "ShareRecord",
    "Storage",
    "open_storage",
]
