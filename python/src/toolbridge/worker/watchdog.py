"""A worker's side of the heartbeat: exit when the host that started it is gone.

The host is gone when its process exits (the worker's parent changes), when it closes the
heartbeat stream, or when no ping arrives within the timeout (a host that hangs). The worker
then takes the processes its tools started with it (its process group) and exits, so a
crashed host leaves no worker behind. When the host process itself has exited, the worker
also removes the host's private socket directory if it was asked to (``--remove-socket-dir``):
a host killed with SIGKILL cannot remove it itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: How often the watchdog looks; bounds how late a worker notices its host is gone.
CHECK_INTERVAL_S = 0.1
#: After the heartbeat stream closes, how long the worker waits to see whether the host process
#: exited (its socket closes a moment before the worker is handed to a new parent).
CLOSED_STREAM_GRACE_S = 0.3
#: The exit status of a worker whose host is gone.
EXIT_HOST_GONE = 3


def rss_bytes() -> int:
    """The process's resident set size (its peak where /proc is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Watchdog:
    """Watches the host; calls ``on_lost(reason, host_exited)`` once when it is gone."""

    def __init__(
        self,
        timeout_ms: int,
        parent_pid: int | None,
        on_lost: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.parent_pid = parent_pid
        self.on_lost = on_lost or (lambda reason, _: exit_with_group(reason))
        # Before the first ping too: a host that dies while the worker starts is noticed.
        self._deadline = time.monotonic() + timeout_ms / 1000
        self._streams = 0
        self._closed_at: float | None = None
        self._lost = False

    def attach(self) -> None:
        self._streams += 1
        self._closed_at = None

    def ping(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms or self.timeout_ms
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    def detach(self) -> None:
        self._streams -= 1
        if self._streams == 0:
            self._closed_at = time.monotonic()

    @property
    def host_exited(self) -> bool:
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    async def run(self) -> None:
        while not self._lost:
            self.check()
            await asyncio.sleep(CHECK_INTERVAL_S)

    def check(self) -> None:
        """Looks once: calls ``on_lost`` if the host is gone."""
        now = time.monotonic()
        if self.host_exited:
            self._lose(f"the host process {self.parent_pid} exited", True)
        elif self._closed_at is not None and now - self._closed_at >= CLOSED_STREAM_GRACE_S:
            self._lose("the host closed the heartbeat stream", False)
        elif now > self._deadline:
            self._lose(f"no heartbeat from the host for {self.timeout_ms} ms", False)

    def _lose(self, reason: str, host_exited: bool) -> None:
        if self._lost:
            return
        self._lost = True
        self.on_lost(reason, host_exited)


def remove_socket_dir(socket_path: str) -> None:
    """Removes the sockets in ``socket_path``'s directory, then the directory if that left it empty.

    Only sockets: whatever else is there was not made by the host and its workers, so the
    directory is then kept. Other workers of the same host do the same at the same moment;
    whatever one of them removed first is not an error for the others.
    """
    directory = Path(socket_path).parent
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(entry.lstat().st_mode):
                    entry.unlink()
        directory.rmdir()


def exit_with_group(reason: str) -> None:
    """Ends the worker at once, and with it every process of its group when it leads one."""
    # stderr is a pipe to the host, which may be gone: a failed write must not stop the exit.
    with contextlib.suppress(OSError):
        print(f"toolbridge worker {os.getpid()}: {reason}; exiting", file=sys.stderr, flush=True)
    if os.getpgrp() == os.getpid():
        # The host made the worker a group leader: the group is the worker and what its tools started.
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(EXIT_HOST_GONE)
