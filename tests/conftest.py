"""Run-wide test settings: how pytest-xdist shares a run among its workers."""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadFileScheduling


class _FileOrDemo(LoadFileScheduling):
    """A test file's tests stay on one worker, so its module-wide neighbourhood is built
    once; all demo tests stay on one, one after the other, since they start Home Assistant
    on fixed ports and are heavy."""

    def _split_scope(self, nodeid: str) -> str:
        return "tests/demo" if nodeid.startswith("tests/demo/") else super()._split_scope(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    """``--dist loadfile`` (scripts/test's host run), with the demo tests as one file."""
    if config.getoption("dist") != "loadfile":
        return None
    return _FileOrDemo(config, log)
