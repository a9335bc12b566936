"""Every request is visible to OpenTelemetry's standard instrumentations, on every backend.

Which instrumentor covers which backend (docs/guides/observability.md):

- ``http_backend="aiohttp"`` (the default on asyncio):
  ``opentelemetry-instrumentation-aiohttp-client`` (``AioHttpClientInstrumentor``);
- ``http_backend="httpx"`` (the default on trio): ``opentelemetry-instrumentation-httpx``
  (``HTTPXClientInstrumentor``), which wraps httpx's own transport.

Each test serves the fake on 127.0.0.1, makes a known number of requests, and
reads the spans from the SDK's in-memory exporter: one CLIENT span per request
with the method, the URL path and the status, and the session id in none of
the attributes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation import aiohttp_client
from opentelemetry.instrumentation import httpx as otel_httpx
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import export
from opentelemetry.sdk.trace.export import in_memory_span_exporter as in_memory

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter, CallbackNotFoundError
from ameyo_callbacks.testing import FakeAmeyo, serve

# Imported, not importorskip'd: they are in the test group, and a broken one
# (0.48b0 needed pkg_resources) must fail the run rather than skip the proof.
pytestmark = pytest.mark.integration


@pytest.fixture
def spans() -> Iterator[in_memory.InMemorySpanExporter]:
    exporter = in_memory.InMemorySpanExporter()
    yield exporter
    exporter.clear()


INSTRUMENTORS = {
    "aiohttp": aiohttp_client.AioHttpClientInstrumentor,
    "httpx": otel_httpx.HTTPXClientInstrumentor,
}


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_each_request_is_one_client_span_without_the_session_id(
    backend: str, spans: in_memory.InMemorySpanExporter
) -> None:
    """A list, a delete, a not-found delete: three CLIENT spans from the backend's instrumentor."""
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(spans))
    instrumentor = INSTRUMENTORS[backend]()
    instrumentor.instrument(tracer_provider=provider)
    fake = FakeAmeyo.seeded(50)
    try:
        with serve(fake) as url:
            async with AmeyoCallbacksClient(
                url, session_id=fake.session_id, http_backend=backend
            ) as client:
                page = await client.get_callbacks(CallbackFilter.campaign(6), limit=5)
                await client.delete_callback(page[0].customer_callback_id)
                with pytest.raises(CallbackNotFoundError):
                    await client.delete_callback(page[0].customer_callback_id)
                assert client.http_backend == backend
    finally:
        instrumentor.uninstrument()
        provider.shutdown()

    finished = spans.get_finished_spans()
    assert [s.kind for s in finished] == [trace.SpanKind.CLIENT] * 3
    methods = [_attr(s, "http.request.method", "http.method") for s in finished]
    assert methods == ["POST", "DELETE", "DELETE"]
    statuses = [_attr(s, "http.response.status_code", "http.status_code") for s in finished]
    assert statuses[:2] == [200, 200]
    assert statuses[2] >= 400
    urls = [str(_attr(s, "url.full", "http.url")) for s in finished]
    assert "/ameyorestapi/voice/customerCallbacks/getFiltered" in urls[0]
    for span in finished:
        for key, value in (span.attributes or {}).items():
            assert fake.session_id not in str(value), key
            assert "sessionid" not in key.lower()


def _attr(span: sdk_trace.ReadableSpan, new: str, old: str) -> object:
    """An attribute under its current semantic-convention name or the old one."""
    attributes = span.attributes or {}
    return attributes.get(new, attributes.get(old))
