"""The retry policy of the Python client, the same as the TypeScript client's.

- ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED`` (``ToolCommunicationError``), and an in-band
  ``Unavailable`` (Redis unreachable, a worker or node that died; not one whose
  ``details["retriable"]`` is ``"false"``): exponential backoff, 1 s, 2 s, 4 s, ... Every
  attempt carries the same request id, so the host answers a call that already completed
  with its recorded outcome instead of running the tool again (docs/replay.md): any tool
  is retried.
- ``RateLimitExceeded`` / ``ConcurrencyLimitExceeded``: the host refused the call before
  the tool ran: after the host's ``retry_after_ms`` when it sent one, else a longer
  backoff (10 s, 20 s, ...) / the exponential one.
- Anything else (the tool raised, validation, unknown tool, the tool's own timeout):
  raised at once, never retried.

A ``SessionNotFound`` (the host restarted on the memory store and lost its sessions) is
answered once per call by re-creating the session under the same id. When the host had
to create it anew, its variables and agent records are gone: the caller is told, through
``on_session_recreated`` (then the call goes on) or else ``SessionRecreatedError`` (the
call was not made), never silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import grpc

from toolbridge.core.errors import ErrorType, SessionError, ToolBridgeError, ToolCommunicationError

T = TypeVar("T")
TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class BackoffPolicy:
    """Waits between attempts, in milliseconds: 1 s doubling up to 30 s; 10 s, 20 s, ... for rate
    limits (the TypeScript client's ``BackoffPolicy``, field for field)."""

    initial_ms: float = 1_000
    multiplier: float = 2.0
    max_ms: float = 30_000
    rate_limit_ms: float = 10_000

    def __post_init__(self) -> None:
        for name in ("initial_ms", "multiplier", "max_ms", "rate_limit_ms"):
            value = getattr(self, name)
            if not (value >= 0 and value != float("inf")):
                raise ValueError(f"BackoffPolicy.{name} must be a finite number >= 0, got {value!r}")


DEFAULT_BACKOFF = BackoffPolicy()


@dataclass(frozen=True)
class RetryEvent:
    """Passed to ``on_retry`` before each wait."""

    attempt: int
    """The attempt that failed, from 1."""
    delay_ms: float
    """How long the next attempt waits."""
    error: ToolBridgeError


@dataclass(frozen=True)
class SessionRecreated:
    """Passed to ``on_session_recreated``: the host had lost the session and created it anew, empty."""

    session_id: str


class SessionRecreatedError(SessionError):
    """The host had lost the session; it was re-created empty under the same id and the call was not made.

    Its ``type`` is ``SessionNotFound`` and ``details["recreated"]`` is ``"true"``. The
    session works again: restore what the program needs (variables, agents), then call again.
    """

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"the host had lost session '{session_id}' (it restarted on the memory store, or the "
            "session expired); it was re-created empty under the same id, so its variables and agent "
            "records are gone. The call was not made: restore what you need and call again (pass "
            "on_session_recreated to be told and go on instead)",
            ErrorType.SESSION_NOT_FOUND,
            session_id,
            {"session_id": session_id, "recreated": "true"},
        )


def is_transient(error: BaseException) -> bool:
    """True for a failure another attempt may get past: a transport one, or an in-band ``Unavailable``."""
    if isinstance(error, ToolCommunicationError):
        return error.code in TRANSIENT_CODES
    return (
        isinstance(error, ToolBridgeError)
        and error.type == ErrorType.UNAVAILABLE
        and error.details.get("retriable") != "false"
    )


def _is_session_lost(error: ToolBridgeError) -> bool:
    return isinstance(error, SessionError) and error.type == ErrorType.SESSION_NOT_FOUND


def retry_delay(error: BaseException, attempt: int, policy: BackoffPolicy) -> float | None:
    """Milliseconds to wait after ``error`` ended attempt ``attempt`` (from 0), or None: do not retry.

    A transient failure is retried whatever the tool: the host replays a call that completed
    under the same request id.
    """
    exponential = min(policy.max_ms, policy.initial_ms * policy.multiplier**attempt)
    if is_transient(error):
        return exponential
    if not isinstance(error, ToolBridgeError):
        return None
    if error.type == ErrorType.RATE_LIMIT_EXCEEDED:
        try:
            hinted = float(error.details.get("retry_after_ms", ""))
        except ValueError:
            hinted = 0.0
        if hinted > 0 and hinted != float("inf"):
            return hinted
        return min(policy.max_ms, policy.rate_limit_ms * (attempt + 1))
    if error.type == ErrorType.CONCURRENCY_LIMIT_EXCEEDED:
        return exponential
    return None


async def run_with_retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    recover_session: Callable[[], Awaitable[bool]] | None = None,
    max_attempts: int = 3,
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_session_recreated: Callable[[SessionRecreated], None] | None = None,
    session_id: str = "",
) -> T:
    """Runs ``attempt`` under the retry policy; ``max_attempts`` counts attempts, the first included.

    A call may run again after a transport failure: the host replays a call completed under the
    same request id. ``recover_session`` re-creates the session after a
    ``SessionNotFound`` and returns whether the host created it anew (empty); then
    ``on_session_recreated`` is told and the call goes on, or without it
    ``SessionRecreatedError`` is raised. None leaves ``SessionNotFound`` to the caller.
    Recovery happens at most once per call, so the loop is bounded.
    """
    attempts = _Attempts(
        recover_session is not None,
        max_attempts,
        backoff,
        on_retry,
        on_session_recreated,
        session_id,
    )
    while True:
        step = attempts.next_step()
        try:
            if step == "recover":
                assert recover_session is not None
                attempts.session_recovered(await recover_session())
            else:
                return await attempt()
        except SessionRecreatedError:
            raise
        except ToolBridgeError as error:
            delay = attempts.failed(error, step)
            if delay is None:
                raise
            if delay > 0:
                await asyncio.sleep(delay / 1000)


def run_with_retry_blocking(
    attempt: Callable[[], T],
    *,
    recover_session: Callable[[], bool] | None = None,
    max_attempts: int = 3,
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_session_recreated: Callable[[SessionRecreated], None] | None = None,
    session_id: str = "",
) -> T:
    """``run_with_retry`` for blocking code: the same policy, waiting with ``time.sleep``."""
    attempts = _Attempts(
        recover_session is not None,
        max_attempts,
        backoff,
        on_retry,
        on_session_recreated,
        session_id,
    )
    while True:
        step = attempts.next_step()
        try:
            if step == "recover":
                assert recover_session is not None
                attempts.session_recovered(recover_session())
            else:
                return attempt()
        except SessionRecreatedError:
            raise
        except ToolBridgeError as error:
            delay = attempts.failed(error, step)
            if delay is None:
                raise
            if delay > 0:
                time.sleep(delay / 1000)


Step = Literal["recover", "call"]


class _Attempts:
    """The state of one retry loop, whichever way it waits: which step comes next, and after
    a failed step whether (and after how long) to go on. Recovery happens at most once."""

    def __init__(
        self,
        can_recover: bool,
        max_attempts: int,
        backoff: BackoffPolicy,
        on_retry: Callable[[RetryEvent], None] | None,
        on_session_recreated: Callable[[SessionRecreated], None] | None,
        session_id: str,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 (it counts attempts, the first included)")
        self.can_recover = can_recover
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.on_retry = on_retry
        self.on_session_recreated = on_session_recreated
        self.session_id = session_id
        self.failures = 0
        self.needs_recovery = False
        self.recovered = False

    def next_step(self) -> Step:
        if self.needs_recovery:
            return "recover"
        return "call"

    def session_recovered(self, recreated: bool) -> None:
        """The session is back; raises ``SessionRecreatedError`` if it came back empty and nobody listens."""
        self.needs_recovery = False
        if recreated:
            if self.on_session_recreated is None:
                raise SessionRecreatedError(self.session_id)
            self.on_session_recreated(SessionRecreated(self.session_id))

    def failed(self, error: ToolBridgeError, step: Step) -> float | None:
        """Milliseconds to wait before the next step, or None: give up (raise ``error``)."""
        lost = _is_session_lost(error) and step != "recover"
        if self.can_recover and lost and not self.recovered:
            self.recovered = True
            self.needs_recovery = True
            return 0.0
        self.failures += 1
        delay = retry_delay(error, self.failures - 1, self.backoff)
        if delay is None or self.failures >= self.max_attempts:
            return None
        if self.on_retry is not None:
            self.on_retry(RetryEvent(attempt=self.failures, delay_ms=delay, error=error))
        return delay
