"""One request is one trace: from the gateway's HTTP span, over NATS, into the registry."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from cogplane.cli.devstack import DevStack

pytestmark = pytest.mark.e2e


def read_spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_trace_started_at_the_gateway_continues_in_the_registry(
    stack: DevStack, auth: dict[str, str], spans_file: Path
) -> None:
    # A token the gateway has not seen yet, so that it asks the registry to verify it.
    created = httpx.post(f"{stack.gateway_url}/v1/tokens", json={"name": "trace"}, headers=auth)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        "Authorization": f"Bearer {created.json()['token']}",
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
    }
    # urllib, not httpx: in-process tests may have instrumented httpx in this process, which
    # would replace our traceparent with its own.
    request = urllib.request.Request(f"{stack.gateway_url}/v1/account", headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200

    deadline = time.monotonic() + 10
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        spans = [s for s in read_spans(spans_file) if s["trace_id"] == trace_id]
        kinds = {(s["service"], s["kind"]) for s in spans}
        # each process writes a span when it ends: the gateway's request span ends last
        if {("registry", "SERVER"), ("api-gateway", "SERVER")} <= kinds:
            break
        time.sleep(0.1)
    by_id = {s["span_id"]: s for s in spans}
    handled = next(s for s in spans if s["name"] == "handle registry.tokens.verify")
    assert handled["service"] == "registry"

    chain = [handled]
    while chain[-1]["parent_span_id"] in by_id:
        chain.append(by_id[chain[-1]["parent_span_id"]])
    names = [(s["service"], s["name"]) for s in chain]
    assert ("api-gateway", "request registry.tokens.verify") in names
    assert chain[-1]["service"] == "api-gateway"
    assert chain[-1]["kind"] == "SERVER"
    assert chain[-1]["parent_span_id"] == "00f067aa0ba902b7"  # the caller's span: one trace
    queries = [s for s in spans if s["service"] == "registry" and s["attributes"].get("db.system")]
    assert queries, "the registry's SQL runs inside the same trace"
