"""The retry policy of the Python client, the same as the TypeScript client's.

- ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED`` (``ToolCommunicationError``): exponential
  backoff, 1 s, 2 s, 4 s, ... The call may have reached the tool, so this applies only
  to tools whose spec says ``idempotent``, unless the caller passes ``force=True``.
- ``RateLimitExceeded`` / ``ConcurrencyLimitExceeded``: the host refused the call before
  the tool ran, so any tool is retried: after the host's ``retry_after_ms`` when it sent
  one, else a longer backoff (10 s, 20 s, ...) / the exponential one.
- Anything else (the tool raised, validation, unknown tool, the tool's own timeout):
  raised at once, never retried.

After a transport failure, a ``SessionNotFound`` means the host restarted and lost its
in-memory sessions: the session is re-created under the same id (host-side state such as
variables is not restored) and the call goes on.
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


def is_transient(error: BaseException) -> bool:
    """True for a transport failure that another attempt may get past."""
    return isinstance(error, ToolCommunicationError) and error.code in TRANSIENT_CODES


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
    may_repeat_call: Callable[[], Awaitable[bool]],
    recover_session: Callable[[], Awaitable[object]] | None = None,
    max_retries: int = 3,
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> T:
    """Runs ``attempt`` under the retry policy; ``max_retries`` counts attempts, the first included.

    ``may_repeat_call`` says whether the call may run twice (e.g. whether the tool is idempotent);
    it is asked once, before the first attempt. ``recover_session``
    re-creates the session after a transport failure was followed by ``SessionNotFound`` (a
    host that restarted); None leaves such errors to the caller. Each pass of the loop either
    returns, raises, or counts a failed attempt; recovery happens at most once per transport
    failure, so it is bounded.
    """
    if max_retries < 1:
        raise ValueError("max_retries must be >= 1 (it counts attempts, the first included)")
    may_repeat: bool | None = None
    failures = 0
    transport_failed = False
    needs_recovery = False
    while True:
        phase = "call"
        try:
            if needs_recovery and recover_session is not None:
                phase = "recover"
                await recover_session()
                needs_recovery = False
            if may_repeat is None:
                phase = "lookup"
                may_repeat = await may_repeat_call()
            phase = "call"
            return await attempt()
        except ToolBridgeError as error:
            if (
                recover_session is not None
                and transport_failed
                and phase == "call"
                and isinstance(error, SessionError)
                and error.type == ErrorType.SESSION_NOT_FOUND
            ):
                transport_failed = False
                needs_recovery = True
                continue
            failures += 1
            # Re-creating the session and the lookup change nothing a tool sees: always safe.
            delay = retry_delay(error, failures - 1, backoff, phase != "call" or may_repeat is True)
            if delay is None or failures >= max_retries:
                raise
            if is_transient(error):
                transport_failed = True
            if on_retry is not None:
                on_retry(RetryEvent(attempt=failures, delay_s=delay, error=error))
            await asyncio.sleep(delay)
