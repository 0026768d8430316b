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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from toolbridge.errors import ErrorType, SessionError, ToolBridgeError, ToolCommunicationError

T = TypeVar("T")
TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class BackoffPolicy:
    """Waits between attempts, in seconds: 1 s doubling up to 30 s; 10 s, 20 s, ... for rate limits."""

    initial_s: float = 1.0
    multiplier: float = 2.0
    max_s: float = 30.0
    rate_limit_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("initial_s", "multiplier", "max_s", "rate_limit_s"):
            value = getattr(self, name)
            if not (value >= 0 and value != float("inf")):
                raise ValueError(f"BackoffPolicy.{name} must be a finite number >= 0, got {value!r}")


DEFAULT_BACKOFF = BackoffPolicy()


@dataclass(frozen=True)
class RetryEvent:
    """Passed to ``on_retry`` before each wait."""

    attempt: int
    """The attempt that failed, from 1."""
    delay_s: float
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


def retry_delay(
    error: BaseException, attempt: int, policy: BackoffPolicy, may_repeat_call: bool
) -> float | None:
    """Seconds to wait after ``error`` ended attempt ``attempt`` (from 0), or None: do not retry."""
    exponential = min(policy.max_s, policy.initial_s * policy.multiplier**attempt)
    if is_transient(error):
        return exponential if may_repeat_call else None
    if not isinstance(error, ToolBridgeError):
        return None
    if error.type == ErrorType.RATE_LIMIT_EXCEEDED:
        try:
            hinted = float(error.details.get("retry_after_ms", ""))
        except ValueError:
            hinted = 0.0
        if hinted > 0 and hinted != float("inf"):
            return hinted / 1000
        return min(policy.max_s, policy.rate_limit_s * (attempt + 1))
    if error.type == ErrorType.CONCURRENCY_LIMIT_EXCEEDED:
        return exponential
    return None


async def run_with_retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    may_repeat_call: Callable[[], Awaitable[bool]] | None = None,
    recover_session: Callable[[], Awaitable[bool]] | None = None,
    max_retries: int = 3,
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_session_recreated: Callable[[SessionRecreated], None] | None = None,
    session_id: str = "",
) -> T:
    """Runs ``attempt`` under the retry policy; ``max_retries`` counts attempts, the first included.

    ``may_repeat_call`` says whether the call may run twice after a transport failure (asked
    once, before the first attempt); without it every call may, as the host replays a call
    completed under the same request id. ``recover_session`` re-creates the session after a
    ``SessionNotFound`` and returns whether the host created it anew (empty); then
    ``on_session_recreated`` is told and the call goes on, or without it
    ``SessionRecreatedError`` is raised. None leaves ``SessionNotFound`` to the caller.
    Recovery happens at most once per call, so the loop is bounded.
    """
    if max_retries < 1:
        raise ValueError("max_retries must be >= 1 (it counts attempts, the first included)")
    may_repeat: bool | None = None if may_repeat_call is not None else True
    failures = 0
    needs_recovery = False
    recovered = False
    while True:
        phase = "call"
        try:
            if needs_recovery and recover_session is not None:
                phase = "recover"
                recreated = await recover_session()
                needs_recovery = False
                if recreated:
                    if on_session_recreated is None:
                        raise SessionRecreatedError(session_id)
                    on_session_recreated(SessionRecreated(session_id))
            if may_repeat is None and may_repeat_call is not None:
                phase = "lookup"
                may_repeat = await may_repeat_call()
            phase = "call"
            return await attempt()
        except SessionRecreatedError:
            raise
        except ToolBridgeError as error:
            lost = _is_session_lost(error) and phase != "recover"
            if recover_session is not None and lost and not recovered:
                recovered = True
                needs_recovery = True
                continue
            failures += 1
            # Re-creating the session and the lookup change nothing a tool sees: always safe.
            delay = retry_delay(error, failures - 1, backoff, phase != "call" or may_repeat is True)
            if delay is None or failures >= max_retries:
                raise
            if on_retry is not None:
                on_retry(RetryEvent(attempt=failures, delay_s=delay, error=error))
            await asyncio.sleep(delay)
