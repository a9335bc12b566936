"""The fake Ameyo server, in-process: wire format, filters, sessions, faults, log."""

from __future__ import annotations

import ast
import email.utils
import functools
import json
import subprocess
import sys
import time
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trio
from _support import VirtualClock, fake_http

import ameyo_callbacks.testing as testing
from ameyo_callbacks import CallbackFilter, CustomerCallback, RetryPolicy, exceptions
from ameyo_callbacks._convert import make_converter
from ameyo_callbacks._protocol import (
    CALLBACKS_PREFIX,
    DEFAULT_LOGIN_PATH,
    NOT_FOUND_KEY,
    build_delete_request,
    tenant_list_path,
)
from ameyo_callbacks.testing import (
    DroppedConnection,
    FakeAmeyo,
    Fault,
    FaultPlan,
    RequestLogEntry,
    _sessions,
)
from ameyo_callbacks.testing._answers import Answer, json_answer

LIST = f"{CALLBACKS_PREFIX}/getFiltered"
TENANT = f"{CALLBACKS_PREFIX}/getTenantUserCallbacks"
WIRE_TYPES = {
    "customerCallbackId": str,
    "campaignId": int,
    "callbackTime": int,
    "selfCallback": bool,
    "phone": str,
    "dateAdded": int,
}


@pytest.fixture
def fake() -> FakeAmeyo:
    return FakeAmeyo.seeded(300)


def page_params(campaign: int | None = 6, limit: int = 100, offset: int = 0, **more: Any) -> Any:
    params: list[tuple[str, Any]] = [("limit", limit)]
    if campaign is not None:
        params.append(("campaignId", campaign))
    params.append(("offset", offset))
    for name, value in more.items():
        values = value if isinstance(value, list) else [value]
        params.extend((name, v) for v in values)
    return params


def order_key(record: dict[str, Any]) -> tuple[int, str]:
    return (record["dateAdded"], record["customerCallbackId"])


async def walk(http: httpx.AsyncClient, path: str = LIST, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        response = await http.post(path, params=page_params(offset=offset, **params))
        assert response.status_code == 200
        page = response.json()
        out.extend(page)
        if len(page) < 100:
            return out
        offset += len(page)


# ----------------------------------------------------------------------
# Public surface


def isort_style_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    group = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


def test_all_lists_exactly_the_public_names_sorted() -> None:
    """testing.__all__ is isort-style sorted, names every public attribute, and all resolve."""
    assert testing.__all__ == sorted(testing.__all__, key=isort_style_key)
    assert set(testing.__all__) == {
        "FAKE_BASE_URL",
        "FAULT_KINDS",
        "Change",
        "DroppedConnection",
        "FakeAmeyo",
        "Fault",
        "FaultPlan",
        "RequestLogEntry",
        "ServerLimits",
        "no_retry_waits",
        "serve",
        "serve_async",
    }
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    public = {
        name
        for name, value in vars(testing).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(testing.__all__)
    with pytest.raises(AttributeError):
        _ = testing.NoSuchThing


def test_plugin_and_package_import_nothing_heavy() -> None:
    """Loading the pytest plugin imports neither the fake app nor uvicorn."""
    code = (
        "import sys, ameyo_callbacks.testing._plugin\n"
        "bad = [m for m in ('ameyo_callbacks.testing._app', 'uvicorn') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


FAKE_DIR = Path(testing.__file__ or "").parent


def module_imports(path: Path) -> set[str]:
    """The modules a file imports at module level (``if TYPE_CHECKING:`` blocks skipped)."""
    tree = ast.parse(path.read_text("utf-8"))
    return {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}


def test_fake_modules_never_import_the_client() -> None:
    """No room of the fake imports the client at module level (_helpers does it on use)."""
    rooms = sorted(FAKE_DIR.glob("_*.py"))
    assert len(rooms) >= 10
    for path in rooms:
        assert "_client" not in module_imports(path), path.name
    assert {"_models"} <= module_imports(FAKE_DIR / "_app.py")


def test_fake_rooms_are_under_400_lines() -> None:
    """FakeAmeyo's largest module is under 400 lines (one job per room)."""
    sizes = {p.name: len(p.read_text("utf-8").splitlines()) for p in FAKE_DIR.glob("*.py")}
    assert max(sizes.values()) < 400, sizes


@pytest.mark.parametrize("tenant_path", ["getTenantUserCallbacks", "/tenant/list/", "x/"])
async def test_tenant_list_is_where_the_clients_rule_puts_it(tenant_path: str) -> None:
    """The fake serves the tenant list at _protocol.tenant_list_path, the client's rule."""
    fake = FakeAmeyo.seeded(5, tenant_path=tenant_path)
    async with fake_http(fake) as http:
        response = await http.post(tenant_list_path(tenant_path), params=page_params(None))
    assert response.status_code == 200
    assert len(response.json()) == 5
    assert fake.requests[-1].endpoint == "tenant"
    with pytest.raises(ValueError, match="tenant_callbacks_path"):
        FakeAmeyo(tenant_path="/")


def test_exported_names_show_the_public_module() -> None:
    """Every class and function in testing.__all__ has __module__ ameyo_callbacks.testing."""
    for name in testing.__all__:
        value = getattr(testing, name)
        if isinstance(value, (type, types.FunctionType)):
            assert value.__module__ == "ameyo_callbacks.testing", name
    assert repr(FaultPlan).startswith("<class 'ameyo_callbacks.testing.FaultPlan'")


async def test_ameyo_fake_fixture_gives_a_seeded_fake(ameyo_fake: FakeAmeyo) -> None:
    """The plugin's ameyo_fake fixture is a 250-callback fake with a working client."""
    assert len(ameyo_fake) == 250
    async with ameyo_fake.client() as client:
        page = await client.get_callbacks(CallbackFilter.campaign(6), limit=10)
    assert len(page) == 10
    assert {cb.campaign_id for cb in page} == {6}


# ----------------------------------------------------------------------
# Seeding and state


def test_seeded_is_deterministic_and_spread() -> None:
    """The same seed gives the same records; they spread over campaigns, users and dates."""
    a, b, c = FakeAmeyo.seeded(500), FakeAmeyo.seeded(500), FakeAmeyo.seeded(500, seed=1)
    assert a.callbacks == b.callbacks
    assert a.ids() != c.ids()
    records = a.callbacks
    assert len({r.customer_callback_id for r in records}) == 500
    assert {r.campaign_id for r in records} == {6, 7, 8}
    assert {r.user_id for r in records} == {None, "stieve", "asha", "ravi", "li", "maria"}
    assert all((r.user_id is None) == (not r.self_callback) for r in records)
    assert all(r.callback_time > r.date_added for r in records)
    assert len({r.date_added.date() for r in records}) > 20
    assert a.ordered_ids() == [r.customer_callback_id for r in records]
    assert records[0].customer_callback_id.startswith("d8")
    assert "-cm-" in records[0].customer_callback_id


def test_seeded_takes_campaigns_users_and_options() -> None:
    """seeded() uses the given campaigns and users and passes options to the constructor."""
    fake = FakeAmeyo.seeded(50, campaigns=[11], users=["solo"], max_limit=10)
    assert {r.campaign_id for r in fake.callbacks} == {11}
    assert {r.user_id for r in fake.callbacks} <= {"solo", None}
    assert fake.max_limit == 10


def test_seeding_a_hundred_thousand_gives_that_many_distinct_callbacks() -> None:
    """100,000 callbacks seeded in chunks: every one there once, ids distinct, in order.

    How fast seeding is belongs to the benchmarks (B4's server seeds a million),
    not to a timed unit test.
    """
    fake = FakeAmeyo.seeded(100_000)
    ids = fake.ordered_ids()
    assert len(fake) == len(ids) == len(set(ids)) == 100_000
    added = [cb.date_added for cb in fake.callbacks]
    assert added == sorted(added)


def test_callbacks_are_in_date_added_then_id_order() -> None:
    """fake.callbacks is ordered by date added, ties broken by id."""
    when = datetime(2024, 5, 1, tzinfo=timezone.utc)
    records = [
        CustomerCallback("b", 6, when, True, "u", "1", 1, when),
        CustomerCallback("a", 6, when, True, "u", "1", 1, when),
        CustomerCallback(
            "c", 6, when, True, "u", "1", 1, datetime(2020, 1, 1, tzinfo=timezone.utc)
        ),
    ]
    fake = FakeAmeyo(records)
    assert [r.customer_callback_id for r in fake.callbacks] == ["c", "a", "b"]


def test_add_takes_records_and_wire_dicts_and_remove_deletes() -> None:
    """add() accepts records and wire dicts (extra fields kept); remove() takes them out."""
    fake = FakeAmeyo()
    wire = {
        "customerCallbackId": "x-1",
        "campaignId": 6,
        "callbackTime": 1521539038782,
        "selfCallback": False,
        "userId": None,
        "phone": "99",
        "customerId": None,
        "dateAdded": 1521539038000,
        "crmRef": "abc",
    }
    fake.add(wire)
    record = fake.get("x-1")
    assert record is not None
    assert record.extra == {"crmRef": "abc"}
    assert make_converter().unstructure(record) == wire
    fake.add(record.__class__("x-2", 7, record.callback_time, True, "u", "1", 5, record.date_added))
    assert fake.ids() == {"x-1", "x-2"}
    assert "x-2" in fake
    fake.remove("x-1")
    assert fake.ids() == {"x-2"}
    with pytest.raises(KeyError):
        fake.remove("x-1")


def test_add_refuses_a_duplicate_id_and_a_badly_typed_wire_dict() -> None:
    """An id already held, or a wire dict with the wrong types, is refused."""
    fake = FakeAmeyo.seeded(3)
    existing = fake.callbacks[0]
    with pytest.raises(ValueError, match="already held"):
        fake.add(existing)
    fake.add(existing, replace=True)
    assert len(fake) == 3
    bad = make_converter().unstructure(existing) | {"customerCallbackId": "new", "campaignId": "6"}
    with pytest.raises(Exception, match="campaignId"):
        fake.add(bad)


async def test_cached_filters_follow_adds_and_removes(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """After adds and removes, a cached filter serves what a fresh fake would."""
    before = await walk(http, campaign=7)
    victims = [r["customerCallbackId"] for r in before[::3]]
    fake.remove(*victims)
    newcomer = dict(before[1], customerCallbackId="zz-new", dateAdded=before[1]["dateAdded"])
    fake.add(newcomer)
    after = await walk(http, campaign=7)
    fresh = FakeAmeyo(fake.callbacks)
    async with fake_http(fresh) as other:
        expected = await walk(other, campaign=7)
    assert after == expected
    assert {r["customerCallbackId"] for r in after} == (
        {r["customerCallbackId"] for r in before} - set(victims) | {"zz-new"}
    )
    assert fake.version > 0


async def test_second_page_reuses_the_cached_filter(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """A filter is computed once: later pages and deletes do not rescan."""
    store = fake._store
    builds = store.filter_builds
    first = await http.post(LIST, params=page_params(campaign=8, limit=10))
    await http.post(LIST, params=page_params(campaign=8, limit=10, offset=10))
    await http.delete(f"{CALLBACKS_PREFIX}/{first.json()[0]['customerCallbackId']}")
    await http.post(LIST, params=page_params(campaign=8, limit=10, offset=20))
    assert store.filter_builds == builds + 1


def test_fast_row_json_is_exactly_json_dumps() -> None:
    """The serving fast path writes the same JSON text as json.dumps of the wire dict."""
    fake = FakeAmeyo.seeded(2000)
    when = datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)
    fake.add(
        CustomerCallback('q"uote\\ü\u2028', 2**31, when, False, None, "ph\none", None, when),
        CustomerCallback("emoji-\U0001f600", 6, when, True, "ünï", "", 0, when),
    )
    fake.add(
        make_converter().unstructure(fake.callbacks[0]) | {"customerCallbackId": "e", "x": [1]}
    )
    store = fake._store
    for row in range(store.row_count):
        for info in (False, True):
            assert store.row_json(row, info=info) == json.dumps(
                store.wire(row, info=info), separators=(",", ":")
            )


def test_fake_serves_under_trio() -> None:
    """The app runs on trio too: latency, a drop and a normal answer."""

    async def main() -> list[tuple[str | None, int | None]]:
        fake = FakeAmeyo.seeded(20, latency=0.01)
        fake.script("list", "drop")
        async with fake_http(fake) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post(LIST, params=page_params())
            assert (await http.post(LIST, params=page_params())).status_code == 200
        return [(e.fault, e.status) for e in fake.requests]

    assert trio.run(main) == [("drop", None), (None, 200)]


# ----------------------------------------------------------------------
# getFiltered


async def test_list_answers_spec_typed_records(http: httpx.AsyncClient) -> None:
    """getFiltered answers a JSON array of records with the spec's fields and wire types."""
    response = await http.post(LIST, params=page_params(limit=20))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    records = response.json()
    assert len(records) == 20
    for record in records:
        assert list(record) == [
            "customerCallbackId",
            "campaignId",
            "callbackTime",
            "selfCallback",
            "userId",
            "phone",
            "customerId",
            "dateAdded",
        ]
        for name, kind in WIRE_TYPES.items():
            assert type(record[name]) is kind, name
        assert record["userId"] is None or type(record["userId"]) is str
        assert type(record["customerId"]) is int
        assert record["campaignId"] == 6
    assert records == sorted(records, key=order_key)


async def test_paging_walks_every_record_once(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """limit/offset pages cover a campaign's callbacks exactly once, in order."""
    records = await walk(http, campaign=6)
    expected = [r.customer_callback_id for r in fake.callbacks if r.campaign_id == 6]
    assert [r["customerCallbackId"] for r in records] == expected
    assert len(expected) > 60


async def test_limit_above_the_maximum_is_served_as_the_maximum(fake: FakeAmeyo) -> None:
    """A limit above 100 is served as 100 (spec 5.1.5.2); max_limit changes the cap."""
    big = FakeAmeyo.seeded(1000)
    for app, cap in ((big, 100), (FakeAmeyo.seeded(1000, max_limit=7), 7)):
        async with fake_http(app, session=False) as http:
            response = await http.post(
                LIST, params=page_params(limit=500), headers={"sessionId": app.session_id}
            )
        assert len(response.json()) == cap


async def test_missing_campaign_id_is_400_invalid_input(http: httpx.AsyncClient) -> None:
    """No campaignId answers 400 with Ameyo's InvalidInput envelope."""
    response = await http.post(LIST, params=page_params(campaign=None))
    assert response.status_code == 400
    assert response.json() == {
        "message": "InvalidInput",
        "code": 40001,
        "info": "parameter expected in input: campaignId",
    }


async def test_missing_limit_or_offset_is_400(http: httpx.AsyncClient) -> None:
    """limit and offset are required too (spec 5.1.4.1)."""
    response = await http.post(LIST, params={"campaignId": 6, "offset": 0})
    assert response.status_code == 400
    assert response.json()["info"] == "parameter expected in input: limit"
    response = await http.post(LIST, params={"campaignId": 6, "limit": 5})
    assert response.json()["info"] == "parameter expected in input: offset"


@pytest.mark.parametrize(
    ("name", "value"),
    [("campaignId", "six"), ("limit", "1.5"), ("offset", "9" * 12), ("toDateAdded", "yesterday")],
)
async def test_non_numeric_parameter_is_404_like_jax_rs(
    http: httpx.AsyncClient, name: str, value: str
) -> None:
    """A number parameter that is not a number (or out of range) answers 404."""
    params = dict(page_params()) | {name: value}
    response = await http.post(LIST, params=params)
    assert response.status_code == 404
    assert name in response.text


async def test_user_ids_filter_takes_repeated_parameters(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """userIds=a&userIds=b keeps callbacks of those users only."""
    records = await walk(http, campaign=6, userIds=["asha", "li"])
    expected = [
        r.customer_callback_id
        for r in fake.callbacks
        if r.campaign_id == 6 and r.user_id in ("asha", "li")
    ]
    assert [r["customerCallbackId"] for r in records] == expected
    assert {r["userId"] for r in records} == {"asha", "li"}
    request = fake.requests[-1]
    assert request.params("userIds") == ["asha", "li"]


async def test_date_filters_are_inclusive_epoch_ms(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """from/to date bounds keep records exactly on the bound (added and scheduled)."""
    records = await walk(http, campaign=7)
    pivot = records[len(records) // 2]
    added = await walk(
        http, campaign=7, fromDateAdded=pivot["dateAdded"], toDateAdded=pivot["dateAdded"]
    )
    assert [r["customerCallbackId"] for r in added] == [pivot["customerCallbackId"]]
    scheduled = await walk(
        http,
        campaign=7,
        fromDateScheduled=pivot["callbackTime"],
        toDateScheduled=pivot["callbackTime"] + 1,
    )
    assert pivot["customerCallbackId"] in [r["customerCallbackId"] for r in scheduled]
    later = await walk(http, campaign=7, fromDateAdded=pivot["dateAdded"] + 1)
    assert all(r["dateAdded"] > pivot["dateAdded"] for r in later)
    assert len(later) == len([r for r in records if r["dateAdded"] > pivot["dateAdded"]])


@pytest.mark.parametrize(
    "more",
    [
        {"fromDateAdded": 1_704_067_200_001, "toDateAdded": 1_704_067_200_000},
        {"fromDateScheduled": 2, "toDateScheduled": 1},
        {"userIds": ["", " "]},
        {"fromDateAdded": 2**62},
        {"toDateScheduled": -(2**62)},
    ],
)
async def test_a_query_the_client_refuses_is_an_empty_page(
    http: httpx.AsyncClient, more: dict[str, Any]
) -> None:
    """from after to, blank user ids, bounds past year 9999: 200 [], as a server would."""
    for campaign in (6, 0):
        response = await http.post(LIST, params=page_params(campaign=campaign, **more))
        assert response.status_code == 200
        assert response.json() == []


async def test_bounds_beyond_any_date_keep_everything(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """A from bound before year 1 or a to bound after 9999 filters nothing out."""
    everything = await walk(http, campaign=8)
    wide = await walk(http, campaign=8, fromDateAdded=-(2**62), toDateScheduled=2**62)
    assert wide == everything
    assert len(everything) == len([r for r in fake.callbacks if r.campaign_id == 8])


async def test_info_true_adds_an_info_field(http: httpx.AsyncClient) -> None:
    """info=true adds an "info" object to each record; info=false does not."""
    with_info = (await http.post(LIST, params=page_params(limit=3, info="true"))).json()
    without = (await http.post(LIST, params=page_params(limit=3, info="false"))).json()
    assert all(isinstance(r["info"], dict) for r in with_info)
    assert all("info" not in r for r in without)


async def test_info_unsupported_answers_405() -> None:
    """With info_supported=False, info=true answers 405 method.not.allowed."""
    fake = FakeAmeyo.seeded(10, info_supported=False)
    async with fake_http(fake) as http:
        response = await http.post(LIST, params=page_params(info="true"))
    assert response.status_code == 405
    assert response.json()["message"] == "method.not.allowed"


async def test_list_accepts_post_and_get_by_default(http: httpx.AsyncClient) -> None:
    """getFiltered answers both POST and GET unless told otherwise."""
    post = await http.post(LIST, params=page_params(limit=5))
    get = await http.get(LIST, params=page_params(limit=5))
    assert post.status_code == get.status_code == 200
    assert post.json() == get.json()


@pytest.mark.parametrize(("allowed", "refused"), [("POST", "GET"), ("GET", "POST")])
async def test_list_methods_switch_refuses_the_other_with_405(allowed: str, refused: str) -> None:
    """list_methods={"POST"} answers GET with a 405 envelope (and vice versa)."""
    fake = FakeAmeyo.seeded(10, list_methods={allowed})
    async with fake_http(fake) as http:
        ok = await http.request(allowed, LIST, params=page_params())
        no = await http.request(refused, LIST, params=page_params())
    assert ok.status_code == 200
    assert no.status_code == 405
    assert no.headers["allow"] == allowed
    assert no.json() == {
        "message": "method.not.allowed",
        "info": None,
        "status": 405,
        "errorCode": 405,
    }


async def test_tenant_endpoint_spans_campaigns_with_the_same_filters(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """getTenantUserCallbacks needs no campaignId, lists every campaign, and filters alike."""
    records = await walk(http, TENANT, campaign=None)
    assert [r["customerCallbackId"] for r in records] == [
        r.customer_callback_id for r in fake.callbacks
    ]
    ravi = await walk(http, TENANT, campaign=None, userIds="ravi")
    assert {r["userId"] for r in ravi} == {"ravi"}
    assert {r["campaignId"] for r in ravi} == {6, 7, 8}
    assert fake.requests[-1].endpoint == "tenant"


async def test_tenant_path_is_configurable() -> None:
    """tenant_path moves the tenant endpoint (a segment or an absolute path)."""
    fake = FakeAmeyo.seeded(10, tenant_path="/ameyorestapi/voice/tenantCallbacks")
    async with fake_http(fake) as http:
        moved = await http.post("/ameyorestapi/voice/tenantCallbacks", params=page_params(None))
        old = await http.post(TENANT, params=page_params(None))
    assert moved.status_code == 200
    assert len(moved.json()) == 10
    assert old.status_code == 405  # a DELETE-only resource now: no such list


async def test_unknown_path_is_404(http: httpx.AsyncClient) -> None:
    """A path the fake does not serve answers 404."""
    response = await http.get("/ameyorestapi/voice/somethingElse")
    assert response.status_code == 404


# ----------------------------------------------------------------------
# DELETE


async def test_delete_removes_and_answers_quoted_ok(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """DELETE .../<id> removes the callback and answers "OK" (JSON-quoted, spec 5.2.6.2)."""
    victim = fake.callbacks[5].customer_callback_id
    response = await http.request(
        "DELETE", f"{CALLBACKS_PREFIX}/{victim}", json={"customerCallbackId": victim}
    )
    assert response.status_code == 200
    assert response.content == b'"OK"'
    assert response.headers["content-type"] == "application/json"
    assert victim not in fake
    assert json.loads(fake.requests[-1].body or b"") == {"customerCallbackId": victim}


@pytest.mark.parametrize("body", ["OK", "ok", '"ok"'])
async def test_delete_ok_body_is_selectable(body: Any) -> None:
    """delete_ok_body picks the bare or quoted OK of the servers in the field."""
    fake = FakeAmeyo.seeded(3, delete_ok_body=body)
    async with fake_http(fake) as http:
        response = await http.delete(f"{CALLBACKS_PREFIX}/{fake.callbacks[0].customer_callback_id}")
    assert response.text == body
    assert len(fake) == 2


async def test_delete_unknown_id_is_512_with_the_key(http: httpx.AsyncClient) -> None:
    """An unknown id answers 512 with the spec's envelope naming the key and the id."""
    response = await http.delete(f"{CALLBACKS_PREFIX}/d810-0-cm-404")
    assert response.status_code == 512
    body = response.json()
    assert body["message"] is None
    assert body["status"] == 512
    assert type(body["errorCode"]) is int
    assert json.loads(body["info"]) == [NOT_FOUND_KEY, "d810-0-cm-404"]
    assert body["info"] == '["CallBackManager.invalid.campcust.callback.id", "d810-0-cm-404"]'


@pytest.mark.parametrize("odd_id", ["a/b", "50%", "%2F", "sp ace", "q?x#y", "..", "ü-1", "+plus"])
async def test_delete_decodes_the_percent_encoded_id_exactly_once(
    fake: FakeAmeyo, http: httpx.AsyncClient, odd_id: str
) -> None:
    """Ids with '/', '%', '?', '..' or non-ASCII round-trip through one percent-decoding."""
    template = fake.callbacks[0]
    fake.add(
        CustomerCallback(odd_id, 6, template.callback_time, True, "u", "1", 1, template.date_added)
    )
    fake.add(
        CustomerCallback("decoy", 6, template.callback_time, True, "u", "1", 1, template.date_added)
    )
    spec = build_delete_request(odd_id)
    response = await http.delete(spec.path)
    assert response.status_code == 200, response.text
    assert odd_id not in fake
    assert "decoy" in fake


async def test_delete_of_a_doubly_encoded_id_is_not_decoded_twice(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """'%252F' names the id '%2F', never '/'."""
    template = fake.callbacks[0]
    for cid in ("/", "%2F"):
        fake.add(
            CustomerCallback(cid, 6, template.callback_time, True, "u", "1", 1, template.date_added)
        )
    response = await http.delete(f"{CALLBACKS_PREFIX}/%252F")
    assert response.status_code == 200
    assert "%2F" not in fake
    assert "/" in fake


async def test_get_on_a_callback_path_is_405(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """A callback's path only takes DELETE."""
    response = await http.get(f"{CALLBACKS_PREFIX}/{fake.callbacks[0].customer_callback_id}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE"


# ----------------------------------------------------------------------
# Sessions and login

INVALID_SESSION = {"message": None, "code": 99999, "info": "invalid.session.id", "status": 403}


@pytest.mark.parametrize("header", [None, "not-a-session"])
async def test_missing_or_unknown_session_is_403(fake: FakeAmeyo, header: str | None) -> None:
    """Every call checks sessionId: missing or unknown answers 403 invalid.session.id."""
    headers = {} if header is None else {"sessionId": header}
    async with fake_http(fake, session=False) as http:
        listing = await http.post(LIST, params=page_params(), headers=headers)
        deleting = await http.delete(f"{CALLBACKS_PREFIX}/{fake.callbacks[0].customer_callback_id}")
    assert listing.status_code == deleting.status_code == 403
    assert listing.json() == INVALID_SESSION
    assert len(fake) == 300
    assert [e.session for e in fake.requests] == [
        "missing" if header is None else "unknown",
        "missing",
    ]


async def test_expired_session_is_403_and_a_new_one_works(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """expire_session() makes the id answer 403; new_session() gives a working one."""
    assert (await http.post(LIST, params=page_params())).status_code == 200
    fake.expire_session()
    response = await http.post(LIST, params=page_params())
    assert response.status_code == 403
    assert response.json() == INVALID_SESSION
    assert fake.requests[-1].session == "expired"
    fresh = fake.new_session()
    response = await http.post(LIST, params=page_params(), headers={"sessionId": fresh})
    assert response.status_code == 200


async def test_session_ttl_expires_unused_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """With session_ttl, a session unused for longer than that expires; a use restarts it."""
    # The session book's own clock: on real time, a stall of 50 ms between
    # seeding and the first request (a GC pause on a loaded machine) would
    # expire the session before its first use.
    now = [1000.0]
    monkeypatch.setattr(_sessions, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    fake = FakeAmeyo.seeded(5, session_ttl=0.05)
    async with fake_http(fake) as http:
        assert (await http.post(LIST, params=page_params())).status_code == 200
        now[0] += 0.04
        assert (await http.post(LIST, params=page_params())).status_code == 200
        now[0] += 0.04  # 0.08 s after seeding, 0.04 s after the last use
        assert (await http.post(LIST, params=page_params())).status_code == 200
        now[0] += 0.06
        assert (await http.post(LIST, params=page_params())).status_code == 403


async def test_secure_mode_answers_401() -> None:
    """secure_mode=True answers a bad session with 401 invalid.authentication.token."""
    fake = FakeAmeyo.seeded(5, secure_mode=True)
    async with fake_http(fake, session=False) as http:
        response = await http.post(LIST, params=page_params(), headers={"sessionId": "nope"})
        login = await http.post(DEFAULT_LOGIN_PATH, json={"userId": "x", "token": "y"})
    assert response.status_code == login.status_code == 401
    assert response.json() == login.json()  # one envelope, one builder
    assert response.json() == {
        "message": "invalid.authentication.token",
        "code": 909090,
        "info": None,
        "status": 401,
    }


async def test_login_gives_a_working_session_and_is_counted(fake: FakeAmeyo) -> None:
    """POST userLogin/login with configured credentials answers a usable session id."""
    fake.add_user("admin", "s3cret-token", domain="acme")
    async with fake_http(fake, session=False) as http:
        body = {"domain": "acme", "userId": "admin", "token": "s3cret-token", "forceLogin": True}
        response = await http.post(DEFAULT_LOGIN_PATH, json=body)
        assert response.status_code == 200
        session = response.json()["userSessionInfo"]["sessionId"]
        listing = await http.post(LIST, params=page_params(), headers={"sessionId": session})
        flat = await http.post("/ameyorestapi/session/userLogin", json=body)
    assert listing.status_code == 200
    assert isinstance(flat.json()["sessionId"], str)
    assert fake.login_count == 2
    logins = [e for e in fake.requests if e.endpoint == "login"]
    assert len(logins) == 2
    assert all(e.body is None for e in logins)
    assert "s3cret-token" not in repr(fake.requests)
    assert session not in repr(fake.requests)


@pytest.mark.parametrize(
    "body",
    [
        {"userId": "admin", "token": "wrong"},
        {"userId": "nobody", "token": "s3cret-token"},
        {"domain": "other", "userId": "admin", "token": "s3cret-token"},
    ],
)
async def test_login_with_bad_credentials_is_401(fake: FakeAmeyo, body: dict[str, str]) -> None:
    """Unknown user, wrong token or wrong domain answers 401 invalid.authentication.token."""
    fake.add_user("admin", "s3cret-token", domain="acme")
    async with fake_http(fake, session=False) as http:
        response = await http.post(DEFAULT_LOGIN_PATH, json=body)
    assert response.status_code == 401
    assert response.json()["message"] == "invalid.authentication.token"
    assert response.json()["code"] == 909090
    assert fake.login_count == 0


def test_log_never_holds_the_session_id(fake: FakeAmeyo) -> None:
    """The request log labels the session header, it never stores it."""

    async def go() -> None:
        async with fake_http(fake) as http:
            await http.post(LIST, params=page_params())

    anyio.run(go)
    entry = fake.requests[-1]
    assert entry.session == "valid"
    assert fake.session_id not in repr(entry)
    assert fake.session_id not in repr(entry.query)


# ----------------------------------------------------------------------
# Faults


async def test_unavailable_fault_is_503_with_retry_after_seconds(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """A scripted "unavailable" answers 503 with Retry-After in seconds, then service resumes."""
    fake.script("list", Fault.unavailable(retry_after=7))
    first = await http.post(LIST, params=page_params())
    second = await http.post(LIST, params=page_params())
    assert first.status_code == 503
    assert first.headers["retry-after"] == "7"
    assert second.status_code == 200
    assert [e.fault for e in fake.requests] == ["unavailable", None]


async def test_rate_limited_fault_can_send_an_http_date(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """A 429 fault sends Retry-After as an HTTP date when asked."""
    fake.script("list", Fault.rate_limited(retry_after=30, http_date=True))
    response = await http.post(LIST, params=page_params())
    assert response.status_code == 429
    when = email.utils.parsedate_to_datetime(response.headers["retry-after"])
    assert 25 <= when.timestamp() - time.time() <= 32


async def test_html_500_fault_is_a_bare_html_page(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """The html_500 fault answers 500 with an HTML page, not JSON."""
    fake.script("any", "html_500")
    response = await http.post(LIST, params=page_params())
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!doctype html>")


async def test_empty_fault_is_an_empty_200(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """The empty fault answers 200 with no body."""
    fake.script("list", "empty")
    response = await http.post(LIST, params=page_params())
    assert response.status_code == 200
    assert response.content == b""


async def test_truncated_fault_cuts_the_json_with_a_matching_length(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """The truncated fault answers 200, Content-Length equal to the cut body, broken JSON."""
    whole = (await http.post(LIST, params=page_params(limit=10))).content
    fake.script("list", "truncated")
    response = await http.post(LIST, params=page_params(limit=10))
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content == whole[: len(whole) // 2]
    with pytest.raises(ValueError):
        json.loads(response.content)


async def test_drop_fault_raises_a_transport_error_in_process(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """In-process, a dropped connection reaches httpx as RemoteProtocolError."""
    fake.script("list", "drop")
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await http.post(LIST, params=page_params())
    assert isinstance(caught.value, DroppedConnection)
    assert fake.requests[-1].status is None
    assert fake.requests[-1].fault == "drop"


@pytest.mark.parametrize("apply", [False, True])
async def test_dropped_delete_applies_only_when_asked(
    fake: FakeAmeyo, http: httpx.AsyncClient, apply: bool
) -> None:
    """apply_before_fault=True models "the server deleted it but the answer was lost"."""
    victim = fake.callbacks[0].customer_callback_id
    fake.script("delete", Fault.drop(apply_before_fault=apply))
    with pytest.raises(httpx.TransportError):
        await http.delete(f"{CALLBACKS_PREFIX}/{victim}")
    assert (victim in fake) is not apply


async def test_faulted_delete_does_nothing_by_default(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """A 503 on a delete leaves the callback in place."""
    victim = fake.callbacks[0].customer_callback_id
    fake.script("delete", "unavailable", "html_500")
    for _ in range(2):
        assert (await http.delete(f"{CALLBACKS_PREFIX}/{victim}")).status_code >= 500
    assert victim in fake


async def test_slow_fault_answers_late(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """The slow fault delays the real answer by its delay."""
    fake.script("list", Fault.slow(0.2))
    started = time.monotonic()
    response = await http.post(LIST, params=page_params())
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.19
    assert fake.requests[-1].duration >= 0.19


async def test_slow_fault_abandoned_by_the_client_changes_nothing(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """A client giving up on a slow delete leaves the callback, and the log shows no status."""
    victim = fake.callbacks[0].customer_callback_id
    fake.script("delete", Fault.slow(10))
    with anyio.move_on_after(0.1):
        await http.delete(f"{CALLBACKS_PREFIX}/{victim}")
    assert victim in fake
    assert fake.requests[-1].status is None
    assert fake.in_flight == 0


async def test_script_order_endpoint_before_any(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """Scripted faults run in order, an endpoint's own queue before "any"; None serves normally."""
    fake.script("any", "empty")
    fake.script("list", None, "html_500")
    statuses = [(await http.post(LIST, params=page_params())).status_code for _ in range(4)]
    assert statuses == [200, 500, 200, 200]
    assert [e.fault for e in fake.requests] == [None, "html_500", "empty", None]
    assert fake.pending_faults("any") == 0


async def test_fault_plan_rate_is_deterministic_per_seed() -> None:
    """A FaultPlan picks the same faults for the same seed and request order."""

    async def run(seed: int) -> list[str | None]:
        fake = FakeAmeyo.seeded(
            20,
            faults=FaultPlan(rate=0.5, kinds=["unavailable", "empty", "html_500"], seed=seed),
        )
        async with fake_http(fake) as http:
            for _ in range(60):
                await http.post(LIST, params=page_params())
        return [e.fault for e in fake.requests]

    first, again, other = await run(1), await run(1), await run(2)
    assert first == again
    assert first != other
    assert 15 <= sum(f is not None for f in first) <= 45
    assert {f for f in first if f} == {"unavailable", "empty", "html_500"}


async def test_fault_plan_endpoints_limit_where_faults_fall() -> None:
    """FaultPlan(endpoints={"delete"}) never faults a list call."""
    fake = FakeAmeyo.seeded(
        20, faults=FaultPlan(rate=1.0, kinds=["html_500"], endpoints={"delete"})
    )
    async with fake_http(fake) as http:
        listing = await http.post(LIST, params=page_params())
        deleting = await http.delete(f"{CALLBACKS_PREFIX}/{fake.callbacks[0].customer_callback_id}")
    assert listing.status_code == 200
    assert deleting.status_code == 500
    fake.clear_faults()
    assert fake.faults.rate == 0


def test_fault_values_are_checked() -> None:
    """Unknown kinds, bad rates, endpoints and Retry-After values are refused."""
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan(kinds=["explode"])
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="endpoint"):
        FaultPlan(endpoints={"lists"})
    with pytest.raises(ValueError, match="retry_after"):
        Fault.unavailable(retry_after=-1)
    with pytest.raises(ValueError, match="endpoint"):
        FakeAmeyo().script("nowhere", "drop")  # type: ignore[arg-type]


# ----------------------------------------------------------------------
# Latency, concurrency and the log


async def test_latency_overlaps_concurrent_requests(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """Latency is awaited, so ten concurrent requests take about one latency and all overlap."""
    fake.latency, fake.jitter = 0.2, 0.05
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(functools.partial(http.post, LIST, params=page_params()))
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.0
    assert fake.max_concurrency == 10
    assert all(0.2 <= e.duration < 0.6 for e in fake.requests)
    fake.reset_max_concurrency()
    assert fake.max_concurrency == 0


async def test_request_log_records_each_request(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """Each log entry has method, path, query pairs, status, fault, and monotonic times."""
    before = time.monotonic()
    await http.post(LIST, params=page_params(limit=3, userIds=["a", "b"]))
    [entry] = fake.requests
    assert isinstance(entry, RequestLogEntry)
    assert entry.method == "POST"
    assert entry.path == LIST
    assert entry.query == (
        ("limit", "3"),
        ("campaignId", "6"),
        ("offset", "0"),
        ("userIds", "a"),
        ("userIds", "b"),
    )
    assert entry.status == 200
    assert entry.fault is None
    assert entry.endpoint == "list"
    assert before <= entry.started <= entry.ended <= time.monotonic()
    fake.clear_requests()
    assert fake.requests == []


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(None, id="answer"),
        pytest.param(Fault.trickle(interval=0.001, chunk=400), id="trickle"),
        pytest.param(Fault.oversized(size=200_000), id="oversized"),
    ],
)
async def test_a_request_is_logged_before_its_answer_body_goes_out(
    fake: FakeAmeyo, fault: Fault | None
) -> None:
    """A client holding its whole answer finds the request in the log, once.

    Over a socket the client reads the body as soon as the server sends it; a
    log written after that is a race a test asserting ``fake.requests`` loses.
    The last body message is the one that completes the answer.
    """
    if fault is not None:
        fake.script("list", fault)
    seen: list[list[int | None]] = []
    sent: list[str] = []
    delivered = False

    async def receive() -> dict[str, object]:
        nonlocal delivered
        if delivered:
            await anyio.sleep_forever()  # pragma: no cover - the fake never reads twice
        delivered = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(str(message["type"]))
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            seen.append([e.status for e in fake.requests])

    query = b"limit=3&campaignId=6&offset=0"
    scope = {
        "type": "http",
        "method": "POST",
        "path": LIST,
        "raw_path": LIST.encode(),
        "query_string": query,
        "headers": [(b"sessionid", fake.session_id.encode())],
    }
    await fake(scope, receive, send)
    assert sent[0] == "http.response.start"
    assert set(sent[1:]) == {"http.response.body"}
    assert (len(sent) > 2) == (fault is not None)
    assert seen == [[200]]
    assert [e.status for e in fake.requests] == [200]


# ----------------------------------------------------------------------
# Through the client, in-process


async def test_client_lists_and_deletes_through_the_fake(fake: FakeAmeyo) -> None:
    """fake.client() reads records equal to the fake's and deletes them."""
    expected = [r for r in fake.callbacks if r.campaign_id == 7][:50]
    async with fake.client() as client:
        page = await client.get_callbacks(CallbackFilter.campaign(7), limit=50)
        tenant = await client.get_callbacks(CallbackFilter.tenant(user_ids=["maria"]), limit=5)
        await client.delete_callback(page[0].customer_callback_id)
    assert page == expected
    assert {cb.user_id for cb in tenant} == {"maria"}
    assert page[0].customer_callback_id not in fake


async def test_client_follows_the_fakes_list_method() -> None:
    """fake.client() uses GET when the fake only takes GET."""
    fake = FakeAmeyo.seeded(20, list_methods={"GET"})
    async with fake.client() as client:
        assert len(await client.get_callbacks(CallbackFilter.campaign(6), limit=5)) == 5
    assert fake.requests[-1].method == "GET"


async def test_client_refuses_its_own_transport(fake: FakeAmeyo) -> None:
    """fake.client() wires the transport itself and says so if given one."""
    with pytest.raises(TypeError, match="own transport"):
        fake.client(transport=httpx.ASGITransport(app=fake))


async def test_client_maps_each_fault_to_its_error(fake: FakeAmeyo) -> None:
    """Without retries, each fault surfaces as the client's matching exception."""
    fake.script("list", "drop", "html_500", "truncated", "empty", Fault.rate_limited(3))
    expected = [
        exceptions.TransportError,
        exceptions.ServerError,
        exceptions.ResponseFormatError,
        exceptions.ResponseFormatError,
        exceptions.RateLimitedError,
    ]
    async with fake.client(retry=RetryPolicy.none()) as client:
        for error in expected:
            with pytest.raises(error):  # a subclass (e.g. TransportError's) is fine
                await client.get_callbacks(CallbackFilter.campaign(6))
    assert fake.pending_faults("list") == 0


async def test_client_maps_session_and_missing_id_errors(fake: FakeAmeyo) -> None:
    """An expired session is AuthenticationError; an unknown id CallbackNotFoundError."""
    async with fake.client(retry=RetryPolicy.none()) as client:
        with pytest.raises(exceptions.CallbackNotFoundError) as caught:
            await client.delete_callback("d8-gone")
        assert caught.value.callback_id == "d8-gone"
        fake.expire_session()
        with pytest.raises(exceptions.AuthenticationError):
            await client.get_callbacks(CallbackFilter.campaign(6))


async def test_client_retries_through_faults(fake: FakeAmeyo) -> None:
    """With retries, a 503, a drop and a 429 are ridden out and the page arrives."""
    fake.script("list", Fault.unavailable(0), "drop", Fault.rate_limited(0))
    policy = RetryPolicy(wait_initial=0.0, wait_jitter=0.0, wait_max=0.0)
    clock = VirtualClock()  # the 2 s the client paces itself after these faults: not real time
    async with fake.client(retry=policy, clock=clock) as client:
        page = await client.get_callbacks(CallbackFilter.campaign(6), limit=5)
    assert len(page) == 5
    assert [e.fault for e in fake.requests] == ["unavailable", "drop", "rate_limited", None]


# ----------------------------------------------------------------------
# The per-request hooks (where server-side behaviour plugs in)


async def test_pipeline_hooks_answer_early_or_wrap_the_service(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """A before_request hook may answer instead; an around_service hook wraps each answer."""
    seen: list[str] = []

    async def gate(req: Any, ex: Any) -> Answer | None:
        seen.append(f"before {ex.endpoint}")
        return json_answer(429, {"busy": True}) if req.first("offset") == "99" else None

    @asynccontextmanager
    async def worker(req: Any, ex: Any) -> AsyncIterator[None]:
        seen.append("take")
        yield
        seen.append(f"give back after {ex.status}")

    fake._pipeline.before_request.append(gate)
    fake._pipeline.around_service.append(worker)
    refused = await http.post(LIST, params=page_params(offset=99))
    served = await http.post(LIST, params=page_params(limit=3))
    unrouted = await http.get("/elsewhere")
    assert (refused.status_code, served.status_code, unrouted.status_code) == (429, 200, 404)
    assert seen == ["before list", "before list", "take", "give back after 200"]
    assert [e.status for e in fake.requests] == [429, 200, 404]
