"""Run-wide test settings: how pytest-xdist shares a run among its workers."""

from __future__ import annotations

from typing import Any

import pytest


def _demo(nodeid: str) -> bool:
    return nodeid.startswith("tests/demo/")


@pytest.hookimpl(optionalhook=True)  # a run without xdist (-p no:xdist) does not know it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (scripts/test's host run): a test file's tests stay on one
    worker, so its module-wide neighbourhood is built once; all demo tests stay on one, one
    after the other, since they start Home Assistant on fixed ports and are heavy."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # noqa: PLC0415 - only under xdist

    class FileOrDemo(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/demo" if _demo(nodeid) else super()._split_scope(nodeid)

    return FileOrDemo(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The demo tests first: they are the longest group (minutes of Home Assistant), so
    under ``--no-loadscope-reorder`` one worker starts them while the other takes the rest,
    instead of one finishing them alone at the end."""
    items.sort(key=lambda item: not _demo(item.nodeid))
