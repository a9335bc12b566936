"""delete_matching on a live list: the fake changes the list while the run walks and deletes.

The fake's live mode changes the list by the count of requests
(``per_request``), so the changes (deletes, adds, reschedules, of the
filtered campaign) come at the same requests on every run, in-process and
under uvicorn on 127.0.0.1 alike, however fast the machine answers.
Each checks the contract: every match present from the run's first request
to its last is deleted (once), and the run ends, after ``max_rounds`` walks
at most.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import unquote

import anyio
import pytest

from ameyo_callbacks import CallbackFilter, RetryPolicy
from ameyo_callbacks._bulk import DEFAULT_MAX_ROUNDS
from ameyo_callbacks.testing import FakeAmeyo, serve

WHERE = CallbackFilter.campaign(6)
PREFIX = "/ameyorestapi/voice/customerCallbacks/"


def matching(fake: FakeAmeyo) -> set[str]:
    return {cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 6}


def sent_deletes(fake: FakeAmeyo) -> list[str]:
    return [unquote(r.path.removeprefix(PREFIX)) for r in fake.requests if r.method == "DELETE"]


def walks(fake: FakeAmeyo) -> int:
    """The walks (rounds) of delete_matching: each starts at offset 0 after the deletes before it.

    A walk may re-read offset 0 itself (a list emptied at its head restarts
    the join there), so a second offset-0 request with no DELETE since the
    last one is the same walk, not a new round.
    """
    count, deleted_since = 0, True
    for r in fake.requests:
        if r.method == "DELETE":
            deleted_since = True
        elif r.endpoint == "list" and r.params("offset") == ["0"] and deleted_since:
            count += 1
            deleted_since = False
    return count


def check_contract(fake: FakeAmeyo, before: set[str], deleted: tuple[str, ...]) -> None:
    """Present throughout -> deleted by the run, and gone; no id sent twice; rounds bounded."""
    removed_by_live = {c.callback_id for c in fake.changes if c.removes}
    present_throughout = before - removed_by_live
    assert present_throughout, "live mode removed every match: nothing to check"
    assert present_throughout <= set(deleted)
    assert not present_throughout & fake.ids()
    sent = Counter(sent_deletes(fake))
    assert max(sent.values()) == 1, "an id was sent twice"
    assert 1 <= walks(fake) <= DEFAULT_MAX_ROUNDS


@pytest.mark.parametrize("order", ["dateAdded", "callbackTime"])
async def test_delete_matching_on_a_live_list_deletes_every_match_present_throughout(
    order: str,
) -> None:
    """Deletes, adds and reschedules while the run goes: each match present throughout goes."""
    fake = FakeAmeyo.seeded(900, campaigns=(6, 7), seed=4, order=order)
    before = matching(fake)
    others = {cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 7}
    fake.live(per_request=0.25, where=WHERE, seed=4)  # a change every 4 requests
    async with fake.client(retry=RetryPolicy.none()) as client:
        result = await client.delete_matching(WHERE, concurrency=8)
    fake.stop_live()
    kinds = Counter(c.kind for c in fake.changes)
    assert kinds["add"]
    assert kinds["reschedule"]
    assert kinds["delete_due"] + kinds["delete_random"]
    check_contract(fake, before, result.deleted)
    assert others <= fake.ids()  # the other campaign is untouched
    assert not result.failed
    # Matches left are callbacks live mode added during the run (the last walk's own
    # requests bring some), never one that was there from the start.
    added = {c.callback_id for c in fake.changes if c.kind == "add"}
    assert matching(fake) <= added


async def test_delete_matching_ends_after_max_rounds_while_adds_never_stop() -> None:
    """A list that grows faster than the run deletes: the run stops after max_rounds walks."""
    fake = FakeAmeyo.seeded(120, campaigns=(6,), seed=2, order="dateAdded")
    before = matching(fake)
    # one add per request answered
    fake.live(per_request=1.0, mix={"add": 1.0}, where=WHERE, seed=2)
    async with fake.client(retry=RetryPolicy.none()) as client:
        with anyio.fail_after(30):
            result = await client.delete_matching(WHERE, concurrency=8)
    fake.stop_live()
    check_contract(fake, before, result.deleted)
    assert walks(fake) == DEFAULT_MAX_ROUNDS
    left = matching(fake)
    assert left, "adds never stop: matches are left after the last round"
    assert all(cb_id.startswith("live-") for cb_id in left)  # only callbacks added meanwhile


@pytest.mark.integration
@pytest.mark.parametrize("order", ["dateAdded", "callbackTime"])
def test_delete_matching_on_uvicorn_in_live_mode_deletes_every_match_present_throughout(
    order: str,
) -> None:
    """On a real socket, a change every 5 requests: every match present throughout is deleted."""
    fake = FakeAmeyo.seeded(800, campaigns=(6,), seed=9, order=order)
    before = matching(fake)

    async def main(url: str) -> tuple[str, ...]:
        from ameyo_callbacks import AmeyoCallbacksClient  # noqa: PLC0415

        async with AmeyoCallbacksClient(
            url, session_id=fake.session_id, retry=RetryPolicy.none()
        ) as client:
            with anyio.fail_after(60):
                result = await client.delete_matching(WHERE, concurrency=8)
        assert not result.failed
        return result.deleted

    with serve(fake) as url:
        fake.live(per_request=0.2, where=WHERE, seed=9)
        deleted = anyio.run(main, url)
        fake.stop_live()
    assert len(fake.changes) >= 50, "the list hardly changed during the run"
    check_contract(fake, before, deleted)
