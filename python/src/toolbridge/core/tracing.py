"""W3C trace context on the wire, and the spans of the worker and the agents (docs/tracing.md).

Nothing here imports OpenTelemetry: the application does. Only when the OpenTelemetry API is
imported and a tracer provider (an SDK) is registered does a client send the active context
with its calls (``outgoing_context``) and do a worker and an agent run make spans; otherwise
each function costs a dictionary lookup and returns nothing. No I/O.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any

#: The instrumentation scope of toolbridge's own spans.
SCOPE = "toolbridge"

#: W3C headers the propagators read and write; gRPC metadata keys are these, lower case.
CONTEXT_KEYS = ("traceparent", "tracestate", "baggage")


def _trace_api() -> ModuleType | None:
    """``opentelemetry.trace`` when the application imported it and registered a tracer provider."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return trace


def records_content() -> bool:
    """Whether spans record arguments, results and thoughts (``TOOLBRIDGE_TRACING_CONTENT``)."""
    return os.environ.get("TOOLBRIDGE_TRACING_CONTENT", "").strip().lower() in ("1", "true")


def tracing_active() -> bool:
    """True when a tracer provider is registered: the spans and context here do something."""
    return _trace_api() is not None


def outgoing_context() -> dict[str, str] | None:
    """The active span's context as W3C headers (``traceparent``, ...), for a call about to go out.

    None when nothing is traced: OpenTelemetry not imported, or no valid span active. Any valid
    span's context goes out, as OpenTelemetry's own propagation does; the tracer provider is not
    looked up here, since that reads the environment on every call while none is registered.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def outgoing_metadata() -> tuple[tuple[str, str], ...] | None:
    """``outgoing_context`` as gRPC metadata; None when there is nothing to send."""
    carrier = outgoing_context()
    return None if carrier is None else tuple(carrier.items())


def _incoming(metadata: Iterable[tuple[str, Any]]) -> dict[str, str]:
    return {key: value for key, value in metadata if key in CONTEXT_KEYS and isinstance(value, str)}


class CallSpan:
    """The SERVER span of one call a process serves, ended by ``end``; ``active()`` makes it current."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def active(self) -> contextlib.AbstractContextManager[Any]:
        """Makes the span current for a block (e.g. one step of a stream), without ending it."""
        from opentelemetry.trace import use_span

        return use_span(self.span, end_on_exit=False)

    def fail(self, error_type: str, message: str) -> None:
        fail(self.span, error_type, message)

    def end(self) -> None:
        self.span.end()


def start_server_span(
    name: str, metadata: Iterable[tuple[str, Any]], attributes: Mapping[str, Any]
) -> CallSpan | None:
    """A SERVER span continuing the trace in ``metadata`` (a gRPC call's); None when nothing is traced."""
    trace = _trace_api()
    if trace is None:
        return None
    from opentelemetry import propagate

    parent = propagate.extract(_incoming(metadata))
    made = trace.get_tracer(SCOPE).start_span(
        name, context=parent, kind=trace.SpanKind.SERVER, attributes=dict(attributes)
    )
    return CallSpan(made)


def active(span: CallSpan | None) -> contextlib.AbstractContextManager[Any]:
    """``span.active()``, or nothing for no span."""
    return contextlib.nullcontext() if span is None else span.active()


@contextlib.contextmanager
def continued(metadata: Iterable[tuple[str, Any]]) -> Iterator[None]:
    """Makes the trace context in ``metadata`` (a gRPC call's) current for the block, when traced."""
    trace = _trace_api()
    carrier = _incoming(metadata) if trace is not None else {}
    if not carrier:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def server_span(
    name: str, metadata: Iterable[tuple[str, Any]], attributes: Mapping[str, Any]
) -> Iterator[Any]:
    """A SERVER span named ``name`` continuing the trace in ``metadata`` (a gRPC call's), made current.

    Yields the span, or None when nothing is traced. An exception escaping the block marks
    the span as failed with its ``error.type`` and goes on.
    """
    trace = _trace_api()
    if trace is None:
        yield None
        return
    from opentelemetry import propagate

    parent = propagate.extract(_incoming(metadata))
    tracer = trace.get_tracer(SCOPE)
    with tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.SERVER, attributes=dict(attributes)
    ) as span:
        yield span


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, Any], *, carrier: Mapping[str, str] | None = None
) -> Iterator[Any]:
    """An INTERNAL span named ``name``, made current for the block; None when nothing is traced.

    With ``carrier`` (W3C headers, e.g. from the environment), the span continues that trace
    instead of the active one.
    """
    trace = _trace_api()
    if trace is None:
        yield None
        return
    parent = None
    if carrier:
        from opentelemetry import propagate

        parent = propagate.extract(dict(carrier))
    with trace.get_tracer(SCOPE).start_as_current_span(
        name, context=parent, attributes=dict(attributes)
    ) as made:
        yield made


def fail(span: Any, error_type: str, message: str) -> None:
    """Marks ``span`` (from ``server_span`` or ``span``; None is ignored) as failed with ``error_type``."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message))


class OpenSpan:
    """A span started in one callback and ended in another (DSPy's ``on_tool_start`` / ``on_tool_end``).

    It is current between ``start`` and ``end``, which must run in the same context (DSPy calls
    both from the wrapper around the one tool call).
    """

    def __init__(self, span: Any, token: Any) -> None:
        self.span = span
        self._token = token

    @classmethod
    def start(cls, name: str, attributes: Mapping[str, Any]) -> OpenSpan | None:
        trace = _trace_api()
        if trace is None:
            return None
        from opentelemetry import context

        made = trace.get_tracer(SCOPE).start_span(name, attributes=dict(attributes))
        return cls(made, context.attach(trace.set_span_in_context(made)))

    def end(self, attributes: Mapping[str, Any] | None = None) -> None:
        from opentelemetry import context

        if attributes:
            self.span.set_attributes(dict(attributes))
        context.detach(self._token)
        self.span.end()
