"""OpenTelemetry tracing: one provider per process, context carried over HTTP and NATS."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from cogplane.common.config import TelemetryExporter, TelemetrySettings

_lock = threading.Lock()
_configured: TracerProvider | None = None


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (for local inspection and tests)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_record(span)) + "\n" for span in spans]
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.writelines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A flat, JSON-serialisable view of a finished span."""
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "name": span.name,
        "service": span.resource.attributes.get("service.name"),
        "kind": span.kind.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": {k: v for k, v in (span.attributes or {}).items()},
    }


def _exporter(settings: TelemetrySettings) -> SpanExporter | None:
    match settings.telemetry_exporter:
        case TelemetryExporter.NONE:
            return None
        case TelemetryExporter.CONSOLE:
            return ConsoleSpanExporter()
        case TelemetryExporter.FILE:
            return JsonLinesSpanExporter(settings.telemetry_file)
        case TelemetryExporter.OTLP:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(endpoint=settings.telemetry_otlp_endpoint)


def setup_tracing(service_name: str, settings: TelemetrySettings) -> TracerProvider:
    """Install the process-wide tracer provider (once) and instrument httpx.

    The first call wins: in-process tests run several services in one process and share one
    provider, named after the first.
    """
    global _configured
    with _lock:
        if _configured is not None:
            return _configured
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = _exporter(settings)
        if exporter is not None:
            simple = settings.telemetry_exporter is TelemetryExporter.FILE
            processor = SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter)
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        _configured = provider
        return provider


def shutdown_tracing() -> None:
    """Flush pending spans."""
    if _configured is not None:
        _configured.force_flush()


def tracer(name: str) -> trace.Tracer:
    """A tracer for ``name`` from the process provider."""
    return trace.get_tracer(name)


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers carrying the current trace context (W3C ``traceparent``)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """The trace context carried by message headers."""
    return propagate.extract(dict(headers or {}))
