"""WatchSessionVariables: a session's variable changes as they are committed (``VariableWatch``)."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import grpc

from toolbridge.core.errors import ToolCommunicationError
from toolbridge.core.tracing import outgoing_metadata
from toolbridge.core.variables import UPDATE_KINDS, Variable, VariableUpdate
from toolbridge.features.variables import variable_error
from toolbridge.transport import AioTransport
from toolbridge.v1 import toolbridge_pb2 as pb


class VariableWatch:
    """A running WatchSessionVariables call: ``async for update in watch``.

    ``await watch.ready()`` (or ``async with watch``) returns once the host's READY update
    arrived: the watch is registered, so every write committed afterwards arrives. READY
    itself is not yielded. Iteration ends after the
    "session_ended" update or ``aclose()``; a failed watch (unknown session, bad names,
    a reader too far behind) raises its error from the iteration. It reads from the
    stream only as fast as it is iterated, so a slow reader is held back by gRPC flow
    control; one that falls too far behind gets a ``ResourceExhausted`` error instead
    of missing updates, and can watch again with ``include_initial=True``. A watch that
    ended (its connection dropped, the host restarted) continues without gap or duplicate
    when watched again with ``resume_after`` set to the ``sequence`` of the last update seen.
    """

    def __init__(
        self,
        transport: AioTransport,
        session_id: str,
        names: Iterable[str] = (),
        include_initial: bool = False,
        resume_after: int | None = None,
    ) -> None:
        self.session_id = session_id
        request = pb.WatchVariablesRequest(
            session_id=session_id, variable_names=list(names), include_initial_values=include_initial
        )
        if resume_after is not None:
            if resume_after < 0:
                raise ValueError(f"resume_after {resume_after} is negative")
            request.resume_after_sequence = resume_after
        self._call = transport.stub.WatchSessionVariables(request, metadata=outgoing_metadata())
        self._peeked: pb.VariableUpdate | None = None
        self._ready = False
        self._done = False
        self._closed = False

    async def ready(self) -> None:
        """Waits for the host's READY update; raises the watch's error if it failed instead."""
        if self._ready:
            return
        # The first message is READY or the error of a watch that failed; it stays peeked,
        # so that iterating skips the one and raises the other too.
        if self._peeked is None:
            self._peeked = await self._read()
        if self._peeked is not None:
            self._convert(self._peeked)
        if self._ready:
            return
        raise ToolCommunicationError(
            "WatchSessionVariables", grpc.StatusCode.UNKNOWN, "the watch ended before the host registered it"
        )

    def __aiter__(self) -> VariableWatch:
        return self

    async def __anext__(self) -> VariableUpdate:
        while not self._done:
            message = self._peeked
            self._peeked = None
            if message is None:
                message = await self._read()
            if message is None:
                break
            update = self._convert(message)
            if update is None:
                continue
            if update.kind == "session_ended":
                self._done = True
            return update
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stops the watch (cancels the call); an iteration in progress ends."""
        self._closed = True
        self._done = True
        self._call.cancel()

    async def __aenter__(self) -> VariableWatch:
        await self.ready()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _read(self) -> pb.VariableUpdate | None:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as error:
            self._done = True
            if self._closed:
                return None
            raise self._transport_error(error) from error
        if not isinstance(message, pb.VariableUpdate):  # grpc.aio.EOF: the stream ended
            self._done = True
            if self._closed:
                return None
            raise ToolCommunicationError(
                "WatchSessionVariables",
                grpc.StatusCode.UNKNOWN,
                "the variable watch ended without a session_ended update or an error",
            )
        return message

    def _convert(self, message: pb.VariableUpdate) -> VariableUpdate | None:
        """The update a message carries (None for READY); raises the error of a failed watch."""
        if message.HasField("error"):
            self._done = True
            raise variable_error(message.error, message.variable_name, self.session_id)
        if message.kind == pb.VARIABLE_UPDATE_KIND_READY:
            self._ready = True
            return None
        kind = UPDATE_KINDS.get(message.kind)
        if kind is None:
            return None  # a kind this client does not know yet
        if kind in ("initial", "set"):
            variable = Variable.from_message(
                pb.Variable(
                    name=message.variable_name,
                    value=message.value,
                    version=message.version,
                    metadata=message.metadata,
                )
            )
            return VariableUpdate(
                kind,
                message.session_id,
                message.variable_name,
                message.version,
                variable,
                sequence=message.sequence,
            )
        if kind == "deleted":
            return VariableUpdate(
                kind, message.session_id, message.variable_name, message.version, sequence=message.sequence
            )
        return VariableUpdate(kind, message.session_id, "", 0, reason=message.end_reason)

    def _transport_error(self, error: grpc.aio.AioRpcError) -> ToolCommunicationError:
        return ToolCommunicationError("WatchSessionVariables", error.code(), error.details() or "")
