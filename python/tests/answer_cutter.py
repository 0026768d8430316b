"""A loopback TCP proxy in front of a host that can lose a call's answer the way a network does.

After the host ran the call and sent its answer, before the client reads it: armed with
``lose_next_answer()``, it holds every byte the host sends and, once a complete HTTP/2 DATA
frame with a payload (a response message) has come from the host, cuts every connection,
dropping what it held. The client sees its connection drop mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib

#: HTTP/2 frame header: 24-bit length, type, flags, 31-bit stream id (RFC 9113 section 4.1).
FRAME_HEADER_BYTES = 9
DATA_FRAME = 0x0


class FrameReader:
    """Finds the end of each frame the host sends on one connection."""

    def __init__(self) -> None:
        self.pending = b""

    def completes_data(self, data: bytes) -> bool:
        """Feeds ``data``; says whether it completed a DATA frame that carries a payload."""
        self.pending += data
        saw_data = False
        while len(self.pending) >= FRAME_HEADER_BYTES:
            length = int.from_bytes(self.pending[:3], "big")
            if len(self.pending) < FRAME_HEADER_BYTES + length:
                break
            if self.pending[3] == DATA_FRAME and length > 0:
                saw_data = True
            self.pending = self.pending[FRAME_HEADER_BYTES + length :]
        return saw_data


class AnswerCutter:
    """The proxy; ``target`` is its address for clients, ``cuts`` the connections it has cut."""

    def __init__(self, host_target: str) -> None:
        """``host_target``: the host's ``host:port`` or ``unix:<path>``."""
        self.host_target = host_target
        self.target = ""
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._armed: asyncio.Future[None] | None = None

    async def start(self) -> AnswerCutter:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.target = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    def lose_next_answer(self) -> asyncio.Future[None]:
        """Loses the next answer the host sends; done once it has been sent and every connection is cut."""
        self._armed = asyncio.get_running_loop().create_future()
        return self._armed

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            host_reader, host_writer = await self._connect_to_host()
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, host_writer))
        frames = FrameReader()
        held = False

        async def to_host() -> None:
            while data := await client_reader.read(65536):
                host_writer.write(data)
                await host_writer.drain()

        async def to_client() -> None:
            nonlocal held
            while data := await host_reader.read(65536):
                answered = frames.completes_data(data)
                if self._armed is None and not held:
                    client_writer.write(data)
                    await client_writer.drain()
                    continue
                held = True  # armed: nothing more reaches the client on this connection
                if answered and self._armed is not None:
                    self._cut_all()
                    return

        try:
            tasks = [asyncio.ensure_future(to_host()), asyncio.ensure_future(to_client())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        finally:
            for writer in (client_writer, host_writer):
                self._writers.discard(writer)
                writer.close()
                with contextlib.suppress(OSError, ConnectionError):
                    await writer.wait_closed()

    async def _connect_to_host(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.host_target.startswith("unix:"):
            return await asyncio.open_unix_connection(self.host_target.removeprefix("unix:"))
        host, _, port = self.host_target.rpartition(":")
        return await asyncio.open_connection(host, int(port))

    def _cut_all(self) -> None:
        armed, self._armed = self._armed, None
        for writer in list(self._writers):
            # An abort (RST), as a failed network would, rather than an orderly close.
            writer.transport.abort()
            self.cuts += 1
        self._writers.clear()
        if armed is not None and not armed.done():
            armed.set_result(None)
