"""Child processes that always die with us: each in its own process group, stopped on exit."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

_LOGGER = logging.getLogger(__name__)


class Supervisor:
    """Starts long-running children and stops every one of them, even on Ctrl-C."""

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopped = False

    def start(
        self, name: str, argv: Sequence[str], log_file: Path, **kwargs: object
    ) -> subprocess.Popen[bytes]:
        if self._stopped:  # a start racing the shutdown (startup runs in a thread)
            raise RuntimeError(f"not starting {name}: shutting down")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - argv is built by us, never a shell string
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,  # type: ignore[arg-type]
            )
        self._children.append((name, proc))
        return proc

    def check_alive(self) -> None:
        """Raise if a child died: the demo is broken without it."""
        for name, proc in self._children:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see its log")

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every process group, then SIGKILL what is left after `timeout`."""
        self._stopped = True
        for _, proc in reversed(self._children):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in reversed(self._children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _LOGGER.warning("%s did not stop in %.0f s; killing it", name, timeout)
            # The group may still hold grandchildren (hass inside the chroot wrapper).
            _signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self._children.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
