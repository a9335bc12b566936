"""Setting the fake up wrongly fails at once, saying what to pass; nothing is left running.

``FakeAmeyo`` and ``FaultPlan`` refuse options that describe no server;
``ServerLimits`` checks each argument when built and shows its state in its
repr; ``serve`` refuses a key file without its certificate before it binds,
and a port that is taken without leaking the socket it opened. The tests that
bind a port bind 127.0.0.1 only and are marked ``integration``.
"""

from __future__ import annotations

import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from _support import fake_http

from ameyo_callbacks.testing import FakeAmeyo, FaultPlan, ServerLimits, serve


@pytest.mark.parametrize(
    ("methods", "shown"),
    [
        pytest.param(("PUT",), "['PUT']", id="another-method"),
        pytest.param(("post", "PATCH"), "['PATCH', 'POST']", id="one-unknown"),
        pytest.param((), "[]", id="none"),
    ],
)
def test_fake_list_methods_must_be_post_or_get(methods: tuple[str, ...], shown: str) -> None:
    """list_methods names which of POST and GET list; anything else is refused, upper-cased."""
    with pytest.raises(ValueError, match="list_methods must be some of POST and GET") as caught:
        FakeAmeyo(list_methods=methods)
    assert str(caught.value).endswith(f"got {shown}")


def test_fake_list_methods_are_case_blind() -> None:
    """list_methods=("get",) is GET only."""
    assert FakeAmeyo(list_methods=("get",)).list_methods == frozenset({"GET"})


@pytest.mark.parametrize("max_limit", [0, -5])
def test_fake_max_limit_must_serve_at_least_one(max_limit: int) -> None:
    """A page of at most 0 records is no server: max_limit below 1 is refused with its value."""
    with pytest.raises(ValueError, match=f"max_limit must be >= 1, got {max_limit}"):
        FakeAmeyo(max_limit=max_limit)


@pytest.mark.parametrize(
    ("n", "options", "message"),
    [
        pytest.param(-1, {}, "n must be >= 0, got -1", id="negative-n"),
        pytest.param(
            5, {"campaigns": ()}, "at least one campaign id and one user id", id="no-campaign"
        ),
        pytest.param(5, {"users": []}, "at least one campaign id and one user id", id="no-user"),
    ],
)
def test_seeding_refuses_what_gives_no_callbacks(
    n: int, options: dict[str, Any], message: str
) -> None:
    """A negative count, or no campaign or user to spread callbacks over: ValueError saying so."""
    with pytest.raises(ValueError, match=message):
        FakeAmeyo.seeded(n, **options)


def test_fault_plan_needs_at_least_one_kind() -> None:
    """A FaultPlan with no kinds could inject nothing: refused, saying kinds must name one."""
    with pytest.raises(ValueError, match="kinds must name at least one fault"):
        FaultPlan(rate=0.5, kinds=())


async def test_session_ttl_set_later_expires_unused_sessions() -> None:
    """session_ttl can be read and set on a running fake; a session unused longer is then 403."""
    fake = FakeAmeyo.seeded(5, campaigns=(6,))
    assert fake.session_ttl is None
    path = "/ameyorestapi/voice/customerCallbacks/getFiltered"
    params = {"campaignId": "6", "offset": "0", "limit": "1"}
    async with fake_http(fake) as http:
        assert (await http.post(path, params=params)).status_code == 200
        # Set after the first use, not before it: the only timing left is the
        # sleep outlasting the TTL, which it always does (set before, a stall
        # of 50 ms ahead of the first request would expire the session unused).
        fake.session_ttl = 0.05
        assert fake.session_ttl == 0.05
        await anyio.sleep(0.1)
        assert (await http.post(path, params=params)).status_code == 403


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"workers": 0}, "workers must be an int >= 1 or None, got 0", id="no-workers"),
        pytest.param({"workers": 2.0}, "workers must be an int >= 1", id="float-workers"),
        pytest.param({"rate": 0}, "rate must be a number > 0 or None, got 0", id="zero-rate"),
        pytest.param({"rate": True}, "rate must be a number > 0", id="bool-rate"),
        pytest.param({"rate": float("nan")}, "rate must be a number > 0", id="nan-rate"),
        pytest.param({"rate": 5, "burst": 0}, "burst must be an int >= 1", id="no-burst"),
        pytest.param(
            {"reject_after": -0.5},
            "reject_after must be a number of seconds >= 0, got -0.5",
            id="negative-reject-after",
        ),
        pytest.param(
            {"reject_after": float("nan")}, "reject_after must be a number", id="nan-reject-after"
        ),
        pytest.param({"reject_after": True}, "reject_after must be a number", id="bool-reject"),
        pytest.param({"reject_after": "1"}, "got '1'", id="str-reject-after"),
    ],
)
def test_server_limits_refuse_what_is_no_limit(options: dict[str, object], message: str) -> None:
    """Each ServerLimits argument is checked when built: the message names it and its value."""
    with pytest.raises(ValueError, match="must be") as caught:
        ServerLimits(**options)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_server_limits_burst_defaults_to_one_second_of_rate() -> None:
    """Without burst, the bucket holds one second of requests (at least one)."""
    assert ServerLimits(rate=7.2).burst == 8
    assert ServerLimits(rate=0.25).burst == 1
    assert ServerLimits().burst == 1


async def test_server_limits_repr_shows_the_limits_and_the_counts() -> None:
    """The repr says the workers, the rate with its burst, and what was admitted and rejected."""
    assert repr(ServerLimits()) == "<ServerLimits workers=None rate=none admitted=0 rejected=0>"
    now = [0.0]
    limits = ServerLimits(workers=3, rate=2, burst=1, clock=lambda: now[0])
    fake = FakeAmeyo.seeded(10, campaigns=(6,), limits=limits)
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        for _ in range(2):
            await http.delete(
                "/ameyorestapi/voice/customerCallbacks/nope",
                headers={"sessionId": fake.session_id},
            )
    assert repr(limits) == "<ServerLimits workers=3 rate=2/s (burst 1) admitted=1 rejected=1>"


def test_serve_refuses_a_key_file_without_its_certificate() -> None:
    """ssl_keyfile alone is a ValueError naming ssl_certfile, raised before anything is bound."""
    with (
        pytest.raises(ValueError, match="ssl_keyfile needs ssl_certfile"),
        serve(FakeAmeyo.seeded(5), ssl_keyfile="key.pem"),
    ):
        pytest.fail("served without a certificate")  # pragma: no cover


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        yield busy.getsockname()[1]


@pytest.mark.integration
def test_serve_on_a_taken_port_fails_and_leaves_no_socket_open(taken_port: int) -> None:
    """A port already listened on: OSError (address in use); the socket serve made is closed.

    pytest runs with warnings as errors: an unclosed socket would fail the test
    with a ResourceWarning when collected.
    """
    with (
        pytest.raises(OSError, match="in use"),
        serve(FakeAmeyo.seeded(5), port=taken_port),
    ):
        pytest.fail("served on a taken port")  # pragma: no cover


@pytest.mark.integration
def test_serve_on_localhost_binds_ipv4_loopback() -> None:
    """host="localhost" is served on 127.0.0.1, and the URL says so (no name to resolve)."""
    fake = FakeAmeyo.seeded(5, campaigns=(6,))
    with serve(fake, host="localhost") as url:
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.post(
            f"{url}/ameyorestapi/voice/customerCallbacks/getFiltered",
            params={"campaignId": "6", "offset": "0", "limit": "10"},
            headers={"sessionId": fake.session_id},
            timeout=10,
            trust_env=False,  # no proxy from the environment: loopback only
        )
    assert answer.status_code == 200
    assert len(answer.json()) == len(fake)


def _failing_startup(tries: list[str]) -> Any:
    """An ASGI app whose lifespan startup fails (as an app that cannot reach its database).

    Each startup it is asked for is noted in ``tries``. (Not read from
    uvicorn's log: a test that ran the fake's command line in the same
    worker may have configured uvicorn's loggers not to propagate.)
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        tries.append("startup")
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    return app


def _threads_serving(url: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"fake-ameyo {url}"]


@pytest.mark.integration
def test_serve_of_an_app_that_fails_to_start_says_so_and_can_be_entered_again() -> None:
    """Startup failed: RuntimeError naming the URL, no thread left, and the serve() is reusable."""
    tries: list[str] = []
    server = serve(_failing_startup(tries))
    urls = []
    for _ in range(2):
        with pytest.raises(RuntimeError, match=r"server at (\S+) did not start") as caught:
            with server:
                pytest.fail("served an app that did not start")  # pragma: no cover
        urls.append(caught.value.args[0].split()[5])
    assert tries == ["startup", "startup"]  # each enter started the app, which failed
    for url in urls:
        assert url.startswith("http://127.0.0.1:")
        assert not _threads_serving(url)


@pytest.mark.integration
async def test_serve_async_of_an_app_that_fails_to_start_says_so() -> None:
    """Under async with, the same RuntimeError, raised in the task, and no thread left."""
    tries: list[str] = []
    with pytest.raises(RuntimeError, match=r"did not start within 10\.0 s") as caught:
        async with serve(_failing_startup(tries)):
            pytest.fail("served an app that did not start")  # pragma: no cover
    assert tries == ["startup"]
    assert not _threads_serving(caught.value.args[0].split()[5])


@pytest.mark.integration
def test_a_server_stuck_in_a_request_fails_to_stop_in_time_and_says_so() -> None:
    """A handler that blocks the loop: exit waits shutdown_timeout twice, then names the URL."""
    release, entered = threading.Event(), threading.Event()

    async def stuck(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            return
        entered.set()
        release.wait(10)  # blocks the server's event loop: it cannot see that it should stop

    def serve_a_stuck_request(conn: socket.socket) -> None:
        with serve(stuck, shutdown_timeout=0.1) as url:
            served.append(url)
            conn.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert entered.wait(10)

    served: list[str] = []
    with socket.socket() as conn:
        with pytest.raises(RuntimeError) as caught:
            serve_a_stuck_request(conn)
        message = str(caught.value)
        del caught  # its traceback holds the server, and through it the stuck connection
    (url,) = served
    assert message == f"the fake Ameyo server at {url} did not stop within 0.2 s"
    threads = _threads_serving(url)
    assert len(threads) == 1  # still in the stuck request
    release.set()
    threads[0].join(10)
    assert not threads[0].is_alive()
    # uvicorn, forced to exit, leaves the stuck request's connection unclosed: collect it now,
    # quietly, rather than let a later test's garbage collection report it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
