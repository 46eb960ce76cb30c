"""Fixtures shared by the demo tests: a scratch directory each test owns."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _scratch_dir(prefix: str) -> Iterator[Path]:
    # Inside the repository: Home Assistant sees the repository only (mounted in its root).
    # The pid keeps a run apart from another run's (and from a demo's .dev/ contents).
    path = REPO / ".dev" / f"{prefix}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root() -> Iterator[Path]:
    """The browser test's directory: its nodes, relay, Home Assistant config and logs."""
    yield from _scratch_dir("browser")


@pytest.fixture
def dev_dir() -> Iterator[Path]:
    """The directory scripts/develop runs in for test_develop."""
    yield from _scratch_dir("test")
