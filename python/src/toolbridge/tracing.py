"""The OpenTelemetry SDK of toolbridge's own Python processes (docs/tracing.md).

A host that traces starts its workers (``python -m toolbridge.worker``) and agent interpreters
(``python -m toolbridge.agent``) with ``TOOLBRIDGE_TRACING=true``; they call
``start_from_environment``, which starts the SDK from the standard ``OTEL_*`` variables (the
resource, the sampler, the batch processor, the OTLP exporter and its endpoint) when the
``toolbridge[tracing]`` extra is installed. An application of its own configures OpenTelemetry
itself; the clients send the active span's context whenever there is one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def enabled_by_environment() -> bool:
    """``TOOLBRIDGE_TRACING`` is on and ``OTEL_SDK_DISABLED`` is not."""
    on = os.environ.get("TOOLBRIDGE_TRACING", "").strip().lower() in _TRUE
    return on and os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def start_from_environment(default_service: str) -> Callable[[], None] | None:
    """Starts the SDK when ``TOOLBRIDGE_TRACING`` asks for it; returns what flushes and stops it.

    ``default_service`` is the service name unless ``OTEL_SERVICE_NAME`` (or
    ``OTEL_RESOURCE_ATTRIBUTES``) names one. None when tracing is off, or when the extra is not
    installed (logged once, the process runs untraced).
    """
    if not enabled_by_environment():
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("TOOLBRIDGE_TRACING is on but OpenTelemetry is missing: install toolbridge[tracing]")
        return None
    attributes = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in attributes
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": default_service}))
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider.shutdown


def _exporters() -> list[Any]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (otlp by default, console, none)."""
    names = [name.strip() for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    exporters: list[Any] = []
    for name in dict.fromkeys(names):
        if name == "otlp":
            exporters.append(_otlp_exporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name not in ("none", ""):
            logger.warning("OTEL_TRACES_EXPORTER: %r is not supported (use otlp, console or none)", name)
    return exporters


def _otlp_exporter() -> Any:
    """The OTLP exporter of ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL``'s protocol; it reads its endpoint."""
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def instrument_dspy() -> bool:
    """DSPy's own spans (modules, predictors, LM calls, tools) with OpenInference's instrumentation.

    Done once, when tracing is on and ``openinference-instrumentation-dspy`` is installed (part
    of the extra); ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=dspy`` leaves it off. Returns whether
    DSPy is instrumented.
    """
    from toolbridge.core.tracing import tracing_active

    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    if not tracing_active() or "dspy" in [name.strip() for name in disabled.split(",")]:
        return False
    try:
        from openinference.instrumentation.dspy import DSPyInstrumentor
    except ImportError:
        return False
    instrumentor = DSPyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return True
