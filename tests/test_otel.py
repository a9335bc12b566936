"""Every request is visible to OpenTelemetry's standard instrumentations, on every backend.

Which instrumentor covers which backend (docs/guides/observability.md):

- the default client (``http_backend="httpx"``): ``opentelemetry-instrumentation-httpx``
  (``HTTPXClientInstrumentor``), globally or for ``client.http_client`` alone;
- ``http_backend="aiohttp"``: ``opentelemetry-instrumentation-aiohttp-client``
  (``AioHttpClientInstrumentor``).

Each test makes a known number of requests (to the fake on 127.0.0.1, or to
respx) and reads the spans from the SDK's in-memory exporter: one CLIENT span
per request with the method, the URL path and the status, and the session id
in none of the attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx
from _support import BASE, CALLBACK_ID, CAMPAIGN_PATH, DELETE_PATH, SESSION, spec_record
from opentelemetry import trace
from opentelemetry.instrumentation import aiohttp_client
from opentelemetry.instrumentation import httpx as otel_httpx
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import export
from opentelemetry.sdk.trace.export import in_memory_span_exporter as in_memory

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    CallbackFilter,
    CallbackNotFoundError,
    StaticSession,
)
from ameyo_callbacks._protocol import NOT_FOUND_KEY
from ameyo_callbacks.testing import FakeAmeyo, serve

# Imported, not importorskip'd: they are in the test group, and a broken one
# (0.48b0 needed pkg_resources) must fail the run rather than skip the proof.


@pytest.fixture
def spans() -> Iterator[in_memory.InMemorySpanExporter]:
    exporter = in_memory.InMemorySpanExporter()
    yield exporter
    exporter.clear()


NOT_FOUND = {"message": None, "info": json.dumps([NOT_FOUND_KEY, CALLBACK_ID]), "status": 512}
INSTRUMENTORS = {
    "aiohttp": aiohttp_client.AioHttpClientInstrumentor,
    "httpx": otel_httpx.HTTPXClientInstrumentor,
}


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_each_request_is_one_client_span_without_the_session_id(
    backend: str, spans: in_memory.InMemorySpanExporter
) -> None:
    """A list, a delete, a not-found delete: three CLIENT spans from the backend's instrumentor.

    On a JWT server (the fake's secure mode): no span shows the session id or the JWT.
    """
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(spans))
    instrumentor = INSTRUMENTORS[backend]()
    instrumentor.instrument(tracer_provider=provider)
    fake = FakeAmeyo.seeded(50, secure_mode=True)
    session = StaticSession(fake.session_id, jwt=fake.jwt)
    try:
        with serve(fake) as url:
            async with AmeyoCallbacksClient(
                url, session_id=session, http_backend=backend
            ) as client:
                page = await client.get_callbacks(CallbackFilter.campaign(6), limit=5)
                await client.delete_callback(page[0].customer_callback_id)
                with pytest.raises(CallbackNotFoundError):
                    await client.delete_callback(page[0].customer_callback_id)
                assert client.http_backend == backend
    finally:
        instrumentor.uninstrument()
        provider.shutdown()

    _check_three_spans(spans, fake.session_id, fake.jwt)


def _check_three_spans(spans: in_memory.InMemorySpanExporter, *secrets: str) -> None:
    """A list, a delete and a not-found delete, each one CLIENT span without a secret."""
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
            assert [s for s in secrets if s in str(value)] == [], key
            assert "sessionid" not in key.lower()
            assert "authorization" not in key.lower()


def _attr(span: sdk_trace.ReadableSpan, new: str, old: str) -> object:
    """An attribute under its current semantic-convention name or the old one."""
    attributes = span.attributes or {}
    return attributes.get(new, attributes.get(old))


async def _three_calls_through_respx(client: AmeyoCallbacksClient) -> None:
    """A list, a delete, a not-found delete, answered by respx (no socket)."""
    page = await client.get_callbacks(CallbackFilter.campaign(6), limit=5)
    await client.delete_callback(page[0].customer_callback_id)
    with pytest.raises(CallbackNotFoundError):
        await client.delete_callback(page[0].customer_callback_id)


def _respx_routes(mock: respx.MockRouter) -> None:
    mock.post(CAMPAIGN_PATH).respond(200, json=[spec_record()])
    mock.delete(DELETE_PATH).mock(
        side_effect=[httpx.Response(200, text='"OK"'), httpx.Response(512, json=NOT_FOUND)]
    )


async def test_global_httpx_instrumentation_sees_a_default_client(
    spans: in_memory.InMemorySpanExporter,
) -> None:
    """``HTTPXClientInstrumentor().instrument()``: one CLIENT span a request of a default client."""
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(spans))
    instrumentor = otel_httpx.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with respx.mock(base_url=BASE) as mock:
            _respx_routes(mock)
            async with AmeyoCallbacksClient(BASE, session_id=SESSION) as client:
                await _three_calls_through_respx(client)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    _check_three_spans(spans, SESSION)


async def test_one_default_client_can_be_instrumented_alone(
    spans: in_memory.InMemorySpanExporter,
) -> None:
    """``instrument_client(client.http_client)`` traces that client's requests, one span each."""
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(spans))
    with respx.mock(base_url=BASE) as mock:
        _respx_routes(mock)
        async with AmeyoCallbacksClient(BASE, session_id=SESSION) as client:
            http = client.http_client
            assert http is not None
            otel_httpx.HTTPXClientInstrumentor().instrument_client(http, tracer_provider=provider)
            await _three_calls_through_respx(client)
    provider.shutdown()
    _check_three_spans(spans, SESSION)
