"""The library's own spans: one per operation, its figures as attributes, what happened as events.

The spans are read from the OpenTelemetry SDK's in-memory exporter, behind a
tracer provider set once for this test process (the way an application sets
it), against the fake in-process or on 127.0.0.1 with the standard HTTP
instrumentations.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest
import respx
from _support import BASE, CAMPAIGN_PATH, VirtualClock
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
    LoginSession,
    RetryPolicy,
    TransportError,
)
from ameyo_callbacks.testing import FakeAmeyo, Fault, no_retry_waits, serve

EXPORTER = in_memory.InMemorySpanExporter()
CAMPAIGN = CallbackFilter.campaign(6)
TOKEN = "tok-tracing-5e1f9"


class WhileOpen(export.SimpleSpanProcessor):
    """Exports to ``EXPORTER`` while this module's tests run, and drops spans after.

    A tracer provider cannot be unset: the tests that run later in this
    process still make spans through it, and must not find them exported.
    """

    open = True

    def on_end(self, span: sdk_trace.ReadableSpan) -> None:
        if self.open:
            super().on_end(span)


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[sdk_trace.TracerProvider]:
    """The process's tracer provider, exporting to ``EXPORTER`` (set once, as an app does)."""
    provider = sdk_trace.TracerProvider()
    processor = WhileOpen(EXPORTER)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another test set the provider first"
    yield provider
    processor.open = False


@pytest.fixture(autouse=True)
def spans() -> Iterator[in_memory.InMemorySpanExporter]:
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def ours(spans: in_memory.InMemorySpanExporter) -> list[sdk_trace.ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.startswith("ameyo.")]


def every_text(spans: in_memory.InMemorySpanExporter) -> str:
    """Every name, attribute and event of every finished span, as one text."""
    texts = []
    for span in spans.get_finished_spans():
        texts += [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
        for event in span.events:
            texts += [event.name, repr(dict(event.attributes or {}))]
    return "\n".join(texts)


async def test_a_walk_of_250_is_one_span_that_says_250() -> None:
    """iter_callbacks: one span for the whole walk, its records, pages, requests and strategy."""
    fake = FakeAmeyo.seeded(250, campaigns=(6,))
    async with fake.client() as client:
        got = [cb async for cb in client.iter_callbacks(CAMPAIGN, prefetch=2)]
    assert len(got) == 250
    (span,) = ours(EXPORTER)
    assert span.name == "ameyo.iter_callbacks"
    attributes = dict(span.attributes or {})
    assert attributes["ameyo.records"] == 250
    assert attributes["ameyo.pages"] == 3
    assert attributes["ameyo.requests"] == len(fake.requests)
    assert attributes["ameyo.walk.strategy"] == "ordered"
    assert attributes["ameyo.prefetch"] == 2
    assert "ameyo.walk.stopped_early" not in attributes


async def test_a_walk_left_early_ends_its_span_with_what_it_yielded() -> None:
    """A break after 130 records: the span ends at once, saying 130 and stopped early."""
    fake = FakeAmeyo.seeded(400, campaigns=(6,))
    async with fake.client() as client:
        async with client.iter_callbacks(CAMPAIGN) as walk:
            taken = 0
            async for _ in walk:
                taken += 1
                if taken == 130:
                    break
        (span,) = ours(EXPORTER)  # ended by the block, before the client closes
    attributes = dict(span.attributes or {})
    assert attributes["ameyo.records"] == 130
    assert attributes["ameyo.walk.stopped_early"] is True


async def test_a_walk_that_switches_strategy_says_why_in_an_event() -> None:
    """A list shuffled per answer: the walk goes on in date windows, and an event says why."""
    fake = FakeAmeyo.seeded(300, campaigns=(6,), order="unstable", seed=3)
    async with fake.client() as client:
        walk = client.iter_callbacks(CAMPAIGN)
        assert walk.strategy == "ordered"
        got = [cb.customer_callback_id async for cb in walk]
    assert sorted(got) == sorted(cb.customer_callback_id for cb in fake.callbacks)
    (span,) = ours(EXPORTER)
    assert walk.strategy == dict(span.attributes or {})["ameyo.walk.strategy"]
    switches = [e for e in span.events if e.name == "ameyo.walk.strategy"]
    assert len(switches) == 1
    assert switches[0].attributes is not None
    assert switches[0].attributes["ameyo.reason"]
    assert dict(span.attributes or {})["ameyo.walk.strategy"] != "ordered"


async def test_a_bulk_delete_of_20_is_one_span_that_says_20_deleted() -> None:
    """delete_callbacks: one INTERNAL span with the outcome counts and 20 requests."""
    fake = FakeAmeyo.seeded(100, campaigns=(6,))
    ids = [cb.customer_callback_id for cb in fake.callbacks[:20]]
    async with fake.client() as client:
        result = await client.delete_callbacks(ids, concurrency=4)
    assert result.counts["deleted"] == 20
    (span,) = ours(EXPORTER)
    assert span.name == "ameyo.delete_callbacks"
    assert span.kind == trace.SpanKind.INTERNAL
    attributes = dict(span.attributes or {})
    assert attributes["ameyo.deleted"] == 20
    assert attributes["ameyo.not_found"] == attributes["ameyo.failed"] == 0
    assert attributes["ameyo.not_attempted"] == 0
    assert attributes["ameyo.requests"] == 20
    assert attributes["ameyo.concurrency"] == "4"


async def test_get_callbacks_is_a_span_with_its_records_and_its_retry_an_event() -> None:
    """A 500 then the page: one span saying 10 records and 2 requests, the retry an event."""
    fake = FakeAmeyo.seeded(100, campaigns=(6,))
    fake.script("list", Fault.html_500())
    with no_retry_waits():
        async with fake.client() as client:
            page = await client.get_callbacks(CAMPAIGN, limit=10, offset=5)
    assert len(page) == 10
    (span,) = ours(EXPORTER)
    assert span.name == "ameyo.get_callbacks"
    attributes = dict(span.attributes or {})
    assert attributes["ameyo.records"] == 10
    assert attributes["ameyo.requests"] == 2
    assert attributes["ameyo.page.offset"] == 5
    assert attributes["ameyo.campaign_id"] == 6
    assert attributes["ameyo.filter"] == "campaign 6"
    (retry,) = span.events
    assert retry.name == "ameyo.retry"
    assert retry.attributes is not None
    assert retry.attributes["ameyo.attempt"] == 2
    assert "HTTP 500" in str(retry.attributes["ameyo.reason"])
    assert retry.attributes["ameyo.wait_s"] == 0.0
    assert retry.attributes["http.request.method"] == "POST"


async def test_a_retry_after_wait_is_an_event_with_its_seconds() -> None:
    """A 429 with Retry-After: 7: the events say the 7 s wait and the retry."""
    fake = FakeAmeyo.seeded(50, campaigns=(6,))
    fake.script("list", Fault.rate_limited(retry_after=7))
    async with fake.client(clock=VirtualClock()) as client:
        await client.get_callbacks(CAMPAIGN, limit=5)
    (span,) = ours(EXPORTER)
    events = {event.name: dict(event.attributes or {}) for event in span.events}
    assert set(events) == {"ameyo.throttled", "ameyo.retry_after", "ameyo.retry"}
    assert events["ameyo.retry_after"]["ameyo.wait_s"] == 7.0
    assert "429" in str(events["ameyo.retry_after"]["ameyo.reason"])
    assert events["ameyo.retry"]["ameyo.wait_s"] == 7.0


async def test_a_throttled_bulk_delete_shows_the_throttle_as_an_event() -> None:
    """A 429 during delete_callbacks: the bulk span has an ameyo.throttled event with the rate."""
    fake = FakeAmeyo.seeded(60, campaigns=(6,))
    fake.script("delete", None, None, Fault.rate_limited(retry_after=0))
    ids = [cb.customer_callback_id for cb in fake.callbacks[:12]]
    async with fake.client(clock=VirtualClock()) as client:
        result = await client.delete_callbacks(ids, concurrency=1)
    assert result.counts["deleted"] == 12
    (span,) = ours(EXPORTER)
    throttled = [e for e in span.events if e.name == "ameyo.throttled"]
    assert len(throttled) == 1
    assert throttled[0].attributes is not None
    assert throttled[0].attributes["http.response.status_code"] == 429
    assert dict(span.attributes or {})["ameyo.requests"] == 13


async def test_a_failed_call_sets_the_error_type_and_status() -> None:
    """delete_callback of an unknown id: the span's status is ERROR, error.type names the error."""
    fake = FakeAmeyo.seeded(10, campaigns=(6,))
    async with fake.client() as client:
        with pytest.raises(CallbackNotFoundError):
            await client.delete_callback("d810-59423051-cm-0")
    (span,) = ours(EXPORTER)
    assert span.name == "ameyo.delete_callback"
    assert span.status.status_code == trace.StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "CallbackNotFoundError"
    assert attributes["ameyo.callback_id"] == "d810-59423051-cm-0"
    assert [event.name for event in span.events] == ["exception"]


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_http_client_spans_nest_under_the_operation_span(backend: str) -> None:
    """On a socket, each request's CLIENT span (the stack's instrumentor) is a child of ours."""
    instrumentor = {
        "httpx": otel_httpx.HTTPXClientInstrumentor,
        "aiohttp": aiohttp_client.AioHttpClientInstrumentor,
    }[backend]()
    instrumentor.instrument()
    fake = FakeAmeyo.seeded(60, campaigns=(6,))
    ids = [cb.customer_callback_id for cb in fake.callbacks[:3]]
    try:
        with serve(fake) as url:
            async with AmeyoCallbacksClient(
                url, session_id=fake.session_id, http_backend=backend
            ) as client:
                await client.get_callbacks(CAMPAIGN, limit=5)
                await client.delete_callbacks(ids)
                # prefetch=1: no request past the end is cancelled in flight, so
                # every request sent has a finished CLIENT span to count.
                walk = client.iter_callbacks(CAMPAIGN, page_size=20, prefetch=1)
                walked = [cb async for cb in walk]
    finally:
        instrumentor.uninstrument()
    assert len(walked) == 57
    finished = EXPORTER.get_finished_spans()
    listing, bulk, walk = ours(EXPORTER)
    assert [listing.name, bulk.name, walk.name] == [
        "ameyo.get_callbacks",
        "ameyo.delete_callbacks",
        "ameyo.iter_callbacks",
    ]
    http = [s for s in finished if s.kind == trace.SpanKind.CLIENT]
    walk_requests = dict(walk.attributes or {})["ameyo.requests"]
    assert isinstance(walk_requests, int)
    assert walk_requests >= 3
    assert len(http) == 1 + 3 + walk_requests
    parents = [s.parent.span_id if s.parent is not None else None for s in http]
    assert parents.count(listing.context.span_id) == 1
    assert parents.count(bulk.context.span_id) == 3
    assert parents.count(walk.context.span_id) == walk_requests
    assert dict(listing.attributes or {})["server.address"] == "127.0.0.1"


async def test_no_span_attribute_or_event_holds_a_secret() -> None:
    """A login session, a retried call and a failed one: no span text shows the token or a sid."""
    fake = FakeAmeyo.seeded(40, campaigns=(6,))
    fake.add_user("agent", TOKEN)
    fake.script("list", Fault.html_500())
    session = LoginSession("agent", TOKEN)
    with no_retry_waits():
        async with fake.client(session_id=session) as client:
            await client.get_callbacks(CAMPAIGN, limit=5)
            with pytest.raises(CallbackNotFoundError):
                await client.delete_callback("d810-59423051-cm-0")
    secrets = session.secrets()
    assert TOKEN in secrets
    assert len(secrets) >= 2, "the client must have logged in"
    text = every_text(EXPORTER)
    assert "ameyo.retry" in text
    for secret in secrets:
        assert secret not in text


async def test_a_failure_whose_cause_quotes_the_session_id_is_recorded_without_it() -> None:
    """The HTTP library's own exception text (the cause) never reaches the span's event."""
    session_id = "sid-tracing-cause-77aa"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"connection for {session_id} refused", request=request)

    with respx.mock(base_url=BASE) as mock:
        mock.post(CAMPAIGN_PATH).mock(side_effect=refuse)
        async with AmeyoCallbacksClient(
            BASE, session_id=session_id, retry=RetryPolicy.none()
        ) as client:
            with pytest.raises(TransportError) as caught:
                await client.get_callbacks(CAMPAIGN, limit=1)
    assert session_id in str(caught.value.__cause__)  # the echo is there to be leaked
    (span,) = ours(EXPORTER)
    assert [event.name for event in span.events] == ["exception"]
    assert session_id not in every_text(EXPORTER)


def test_import_and_calls_without_opentelemetry_load_none_of_it() -> None:
    """A program that never imports OpenTelemetry: the package and a call leave it unloaded."""
    program = textwrap.dedent(
        """
        import sys
        import anyio
        import ameyo_callbacks
        from ameyo_callbacks.testing import FakeAmeyo

        async def main():
            fake = FakeAmeyo.seeded(30, campaigns=(6,))
            async with fake.client() as client:
                await client.get_callbacks(ameyo_callbacks.CallbackFilter.campaign(6))

        anyio.run(main)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
        assert loaded == [], loaded
        """
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
