"""Durable node state behind one interface (``Storage``); SQLite is the embedded default."""

from pathlib import Path

from .base import (
    ChannelRecord,
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
from .postgres import PostgresStorage, StorageUnavailableError
from .sqlite import DB_FILE_NAME, SQLiteStorage


def open_storage(data_dir: Path, database_url: str | None = None,
                 node_id: str | None = None) -> Storage:
    """The node's storage (not yet opened: call ``await storage.open()``): SQLite in the data
    dir, or the PostgreSQL database at ``database_url`` if one is set, which ``open`` refuses
    if a node other than ``node_id`` has used it.

    Raises ``StorageUnavailableError`` if PostgreSQL is asked for and asyncpg is missing.
    """
    if database_url is not None:
        return PostgresStorage(database_url, node_id)
    return SQLiteStorage(data_dir)


__all__ = [
    "DB_FILE_NAME",
    "ChannelRecord",
    "Contribution",
    "Delivery",
    "InviteStatus",
    "Misbehaviour",
    "PostgresStorage",
    "PutOutcome",
    "ResultRecord",
    "RoundCommit",
    "SQLiteStorage",
    "ShareRecord",
    "Storage",
    "StorageUnavailableError",
    "open_storage",
]
