"""``iter_callbacks(where, resume_from=...)`` refuses what is not a checkpoint of the same walk.

A checkpoint is an opaque string (``Page.checkpoint``). Anything else, a
damaged or hand-made one, or one taken on another filter, is refused when the
walk is built, with a message that says what to pass instead, and before any
request is sent. Runs against the fake in-process (no socket).
"""

from __future__ import annotations

import base64
import json

import pytest
from _support import ids

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter, RetryPolicy
from ameyo_callbacks.testing import FakeAmeyo

WHERE = CallbackFilter.campaign(6)
NOT_A_CHECKPOINT = "is not a checkpoint of iter_callbacks"


def client_of(fake: FakeAmeyo) -> AmeyoCallbacksClient:
    return fake.client(retry=RetryPolicy.none())


def forged(body: object) -> str:
    """A string in the checkpoint's outer form (``ck2.`` + base64url JSON) holding ``body``."""
    raw = base64.urlsafe_b64encode(json.dumps(body).encode()).decode("ascii").rstrip("=")
    return f"ck2.{raw}"


async def first_checkpoint(fake: FakeAmeyo, where: CallbackFilter) -> tuple[list[str], str]:
    """The ids of the first 20-record page of ``where`` and that page's checkpoint."""
    async with client_of(fake) as client:
        async with client.iter_callbacks(where, page_size=20, prefetch=1) as walk:
            async for page in walk.pages():
                return ids(page.items), page.checkpoint
    msg = "the fake served no page"
    raise AssertionError(msg)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("ck1.eyJvIjowfQ", id="another-version"),
        pytest.param("ck2.%%%not-base64%%%", id="not-base64"),
        pytest.param("ck2." + base64.urlsafe_b64encode(b"not json").decode(), id="not-json"),
        pytest.param(forged({"a": []}), id="no-offset"),
        pytest.param(forged({"o": 0, "d": "5", "i": []}), id="string-date"),
        pytest.param(forged({"o": 0, "d": 5, "i": [["an-id"]]}), id="id-not-a-string"),
        pytest.param(forged({"o": -1, "a": []}), id="negative-offset"),
        pytest.param(forged({"o": True, "a": []}), id="bool-offset"),
        pytest.param(forged({"o": "40", "a": []}), id="string-offset"),
        pytest.param(forged({"o": 1.5, "a": []}), id="float-offset"),
        pytest.param(forged([0]), id="json-list"),
    ],
)
async def test_a_damaged_checkpoint_is_refused_before_any_request(text: str) -> None:
    """Anything but an intact checkpoint: a ValueError saying to pass Page.checkpoint as is."""
    fake = FakeAmeyo.seeded(50)
    async with client_of(fake) as client:
        with pytest.raises(ValueError, match=NOT_A_CHECKPOINT) as caught:
            client.iter_callbacks(WHERE, resume_from=text)
    assert "Page.checkpoint" in str(caught.value)
    assert caught.value.__cause__ is None  # no decoder traceback hiding the advice
    assert fake.requests == []


async def test_a_checkpoint_that_is_not_a_string_is_a_type_error() -> None:
    """A Page (not its .checkpoint) passed as resume_from is a TypeError naming what was given."""
    fake = FakeAmeyo.seeded(50)
    async with client_of(fake) as client:
        with pytest.raises(TypeError, match="resume_from must be a checkpoint string") as caught:
            client.iter_callbacks(WHERE, resume_from=b"ck1.e30")  # type: ignore[arg-type]
    assert "bytes" in str(caught.value)
    assert fake.requests == []


async def test_resume_from_and_start_offset_together_are_refused() -> None:
    """A checkpoint already says where to start: a start_offset beside it is a ValueError."""
    fake = FakeAmeyo.seeded(200)
    _, checkpoint = await first_checkpoint(fake, WHERE)
    fake.clear_requests()
    async with client_of(fake) as client:
        with pytest.raises(ValueError, match="pass resume_from or start_offset, not both"):
            client.iter_callbacks(WHERE, resume_from=checkpoint, start_offset=20)
    assert fake.requests == []


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(CallbackFilter.campaign(7), id="another-campaign"),
        pytest.param(CallbackFilter.campaign(6, user_ids=["asha"]), id="a-narrower-filter"),
    ],
)
async def test_a_checkpoint_of_another_filter_is_refused(other: CallbackFilter) -> None:
    """Resuming with a filter the checkpoint was not taken with says to use the same filter."""
    fake = FakeAmeyo.seeded(200)
    _, checkpoint = await first_checkpoint(fake, WHERE)
    fake.clear_requests()
    async with client_of(fake) as client:
        with pytest.raises(ValueError, match="another filter") as caught:
            client.iter_callbacks(other, resume_from=checkpoint)
    assert "same CallbackFilter" in str(caught.value)
    assert fake.requests == []


async def test_a_checkpoint_with_info_changed_is_refused() -> None:
    """``info`` is part of what a checkpoint is for: resuming with another ``info`` is refused."""
    fake = FakeAmeyo.seeded(200)
    async with client_of(fake) as client:
        async with client.iter_callbacks(WHERE, page_size=20, prefetch=1, info=True) as walk:
            async for page in walk.pages():
                checkpoint = page.checkpoint
                break
        with pytest.raises(ValueError, match="another filter"):
            client.iter_callbacks(WHERE, resume_from=checkpoint, info=False)


async def test_an_intact_checkpoint_resumes_with_the_same_filter() -> None:
    """The refusals above leave the real use working: the same filter resumes after the page."""
    fake = FakeAmeyo.seeded(200)
    first, checkpoint = await first_checkpoint(fake, WHERE)
    async with client_of(fake) as client:
        rest = [cb async for cb in client.iter_callbacks(WHERE, resume_from=checkpoint)]
    expected = [cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 6]
    assert first + ids(rest) == expected
