"""Host addresses as gRPC writes them, read into what a socket connects to (no I/O)."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class SocketAddress:
    """Where a socket connects: a Unix domain socket path, or a TCP host and port.

    ``authority`` is the HTTP/2 ``:authority`` of requests to it.
    """

    family: socket.AddressFamily
    path: str = ""
    host: str = ""
    port: int = 0

    @property
    def authority(self) -> str:
        if self.family == socket.AF_UNIX:
            return "localhost"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(target: str) -> SocketAddress | None:
    """The socket address of a gRPC target, or None for a form this reads not (gRPC may).

    Understood: ``unix:path`` and ``unix:/abs/path`` (also ``unix:///abs/path``),
    ``host:port``, ``[v6]:port``, and those with a ``dns:///``, ``ipv4:`` or ``ipv6:`` prefix.
    """
    if target.startswith("unix:"):
        path = target[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]  # unix://ABSOLUTE_PATH
        return SocketAddress(socket.AF_UNIX, path=path) if path else None
    for prefix in ("dns:///", "ipv4:", "ipv6:"):
        if target.startswith(prefix):
            target = target[len(prefix) :]
            break
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit() or not host:
        return None
    if host.startswith("[") and host.endswith("]"):
        return SocketAddress(socket.AF_INET6, host=host[1:-1], port=int(port))
    if ":" in host or "/" in host:
        return None
    return SocketAddress(socket.AF_INET, host=host, port=int(port))
