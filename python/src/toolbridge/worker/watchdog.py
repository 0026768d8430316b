"""A worker's side of the heartbeat: exit when the host that started it is gone.

The host is gone when its process exits (the worker's parent changes), when it closes the
heartbeat stream, or when no ping arrives within the timeout (a host that hangs). The worker
then takes the processes its tools started with it (its process group) and exits, so a
crashed host leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
import time
from collections.abc import Callable

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: How often the watchdog looks; bounds how late a worker notices its host is gone.
CHECK_INTERVAL_S = 0.1


def rss_bytes() -> int:
    """The process's resident set size (its peak where /proc is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Watchdog:
    """Watches the host; calls ``on_lost(reason)`` once when it is gone."""

    def __init__(
        self,
        timeout_ms: int,
        parent_pid: int | None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.parent_pid = parent_pid
        self.on_lost = on_lost or exit_with_group
        # Before the first ping too: a host that dies while the worker starts is noticed.
        self._deadline = time.monotonic() + timeout_ms / 1000
        self._streams = 0
        self._lost = False

    def attach(self) -> None:
        self._streams += 1

    def ping(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms or self.timeout_ms
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    def detach(self) -> None:
        self._streams -= 1
        if self._streams == 0:
            self._lose("the host closed the heartbeat stream")

    async def run(self) -> None:
        while not self._lost:
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                self._lose(f"the host process {self.parent_pid} exited")
            elif time.monotonic() > self._deadline:
                self._lose(f"no heartbeat from the host for {self.timeout_ms} ms")
            await asyncio.sleep(CHECK_INTERVAL_S)

    def _lose(self, reason: str) -> None:
        if self._lost:
            return
        self._lost = True
        self.on_lost(reason)


def exit_with_group(reason: str) -> None:
    """Ends the worker at once, and with it every process of its group when it leads one."""
    # stderr is a pipe to the host, which may be gone: a failed write must not stop the exit.
    with contextlib.suppress(OSError):
        print(f"toolbridge worker {os.getpid()}: {reason}; exiting", file=sys.stderr, flush=True)
    if os.getpgrp() == os.getpid():
        # The host made the worker a group leader: the group is the worker and what its tools started.
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(3)
