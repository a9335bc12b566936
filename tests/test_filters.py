"""CallbackFilter: what a list call selects, checked when built, shown in words."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from ameyo_callbacks import CallbackFilter

SAMPLE_MS = 1521539038782  # the spec's sample date: 2018-03-20 09:43:58.782 UTC
SAMPLE_DT = datetime(2018, 3, 20, 9, 43, 58, 782000, tzinfo=timezone.utc)
DATE_ARGS = ["from_date_added", "to_date_added", "from_date_scheduled", "to_date_scheduled"]


def both_scopes(**kwargs: Any) -> list[CallbackFilter]:
    """The same narrowing on a campaign and on the tenant (each constructor checks alike)."""
    return [CallbackFilter.campaign(6, **kwargs), CallbackFilter.tenant(**kwargs)]


# --------------------------------------------------------------------------
# scope


def test_campaign_and_tenant_scopes() -> None:
    """campaign(6) selects campaign 6; tenant() has no campaign id and says so."""
    campaign, tenant = both_scopes()
    assert (campaign.campaign_id, campaign.is_tenant) == (6, False)
    assert (tenant.campaign_id, tenant.is_tenant) == (None, True)


def test_campaign_none_is_refused_rather_than_widened_to_the_tenant() -> None:
    """campaign(None) is a TypeError pointing at tenant(): the scope is never widened silently."""
    with pytest.raises(TypeError, match=r"campaign_id .*CallbackFilter\.tenant\(\)"):
        CallbackFilter.campaign(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "exc"),
    [(0, ValueError), (-6, ValueError), (True, TypeError), ("6", TypeError), (6.0, TypeError)],
)
def test_bad_campaign_id_is_named(value: object, exc: type[Exception]) -> None:
    """A campaign id is a positive int: not a bool, a float or a numeric string."""
    with pytest.raises(exc, match=r"\bcampaign_id\b"):
        CallbackFilter.campaign(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# dates


def test_datetime_bounds_become_epoch_milliseconds() -> None:
    """Aware datetimes in any zone become the epoch ms of the same instant, on the wire too."""
    ist = SAMPLE_DT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    where = CallbackFilter.campaign(6, from_date_scheduled=SAMPLE_DT, to_date_scheduled=ist)
    assert (where.from_date_scheduled, where.to_date_scheduled) == (SAMPLE_MS, SAMPLE_MS)
    assert where.params() == [
        ("fromDateScheduled", str(SAMPLE_MS)),
        ("toDateScheduled", str(SAMPLE_MS)),
    ]


def test_bounds_give_aware_utc_datetimes_of_the_set_bounds_only() -> None:
    """bounds() maps each set bound to an aware UTC datetime; unset ones are absent."""
    where = CallbackFilter.tenant(from_date_added=SAMPLE_MS, to_date_scheduled=SAMPLE_DT)
    assert where.bounds() == {"from_date_added": SAMPLE_DT, "to_date_scheduled": SAMPLE_DT}
    assert all(d.utcoffset() == timedelta(0) for d in where.bounds().values())


@pytest.mark.parametrize("what", ["added", "scheduled"])
@pytest.mark.parametrize(
    ("low", "high"),
    [
        (SAMPLE_MS + 1, SAMPLE_MS),
        (datetime(2020, 1, 2, tzinfo=timezone.utc), datetime(2020, 1, 1, tzinfo=timezone.utc)),
        (datetime(2020, 1, 1, 0, 0, 1, tzinfo=timezone.utc), 1577836800000),
    ],
)
def test_from_date_after_to_date_is_refused(what: str, low: Any, high: Any) -> None:
    """A from_* bound after its to_* bound raises ValueError naming both, on either scope."""
    kwargs = {f"from_date_{what}": low, f"to_date_{what}": high}
    with pytest.raises(ValueError, match=rf"from_date_{what} .* to_date_{what}"):
        CallbackFilter.campaign(6, **kwargs)
    with pytest.raises(ValueError, match=rf"from_date_{what} .* to_date_{what}"):
        CallbackFilter.tenant(**kwargs)


def test_equal_from_and_to_dates_are_accepted() -> None:
    """A window of one instant (from == to) is valid."""
    where = CallbackFilter.campaign(6, from_date_added=SAMPLE_MS, to_date_added=SAMPLE_MS)
    assert (where.from_date_added, where.to_date_added) == (SAMPLE_MS, SAMPLE_MS)


@pytest.mark.parametrize("name", DATE_ARGS)
def test_naive_datetime_bound_is_refused(name: str) -> None:
    """A naive datetime bound raises ValueError naming the argument."""
    with pytest.raises(ValueError, match=rf"{name} is a naive datetime"):
        CallbackFilter.campaign(6, **{name: datetime(2020, 1, 1)})


@pytest.mark.parametrize("name", DATE_ARGS)
@pytest.mark.parametrize("value", [1.5e12, "1521539038782", True])
def test_date_bound_of_wrong_type_is_refused(name: str, value: object) -> None:
    """A date bound that is neither an aware datetime nor an int raises TypeError naming it."""
    with pytest.raises(TypeError, match=name):
        CallbackFilter.tenant(**{name: value})


@pytest.mark.parametrize("name", DATE_ARGS)
def test_epoch_ms_no_datetime_can_show_is_refused(name: str) -> None:
    """An int bound far outside what a datetime holds is a ValueError, not a later crash."""
    with pytest.raises(ValueError):
        CallbackFilter.campaign(6, **{name: 10**20})


# --------------------------------------------------------------------------
# users


@pytest.mark.parametrize(
    ("user_ids", "exc"),
    [
        ("Stieve", TypeError),
        (b"Stieve", TypeError),
        (5, TypeError),
        ([], ValueError),
        (["Stieve", ""], ValueError),
        (["Stieve", "  "], ValueError),
        (["Stieve", 5], TypeError),
        (["Stieve", None], TypeError),
    ],
)
def test_bad_user_ids_are_named(user_ids: object, exc: type[Exception]) -> None:
    """user_ids must be a non-empty iterable of non-blank strings; the error names user_ids."""
    with pytest.raises(exc, match="user_ids"):
        CallbackFilter.campaign(6, user_ids=user_ids)  # type: ignore[arg-type]
    with pytest.raises(exc, match="user_ids"):
        CallbackFilter.tenant(user_ids=user_ids)  # type: ignore[arg-type]


def test_user_ids_from_any_iterable_are_held_as_a_tuple() -> None:
    """user_ids may be any iterable of strings, such as a generator; they are kept in order."""
    where = CallbackFilter.campaign(6, user_ids=(u for u in ["ravi", "asha", "ravi"]))
    assert where.user_ids == ("ravi", "asha", "ravi")
    assert where.params() == [("userIds", "ravi"), ("userIds", "asha"), ("userIds", "ravi")]


# --------------------------------------------------------------------------
# value semantics


def test_filters_are_frozen_hashable_and_compare_by_value() -> None:
    """Equal filters are equal and hash alike (a list of user ids becomes a tuple)."""
    one = CallbackFilter.campaign(6, user_ids=["asha"], from_date_added=SAMPLE_DT)
    two = CallbackFilter.campaign(6, user_ids=("asha",), from_date_added=SAMPLE_MS)
    assert one == two
    assert len({one, two, CallbackFilter.tenant(user_ids=["asha"])}) == 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.campaign_id = 7  # type: ignore[misc]


def test_evolve_checks_the_changed_copy_again() -> None:
    """attrs.evolve makes a changed copy, checked as a new filter is."""
    where = CallbackFilter.campaign(6, from_date_added=SAMPLE_MS)
    assert attrs.evolve(where, user_ids=["ravi"]).user_ids == ("ravi",)
    with pytest.raises(TypeError, match="user_ids"):
        attrs.evolve(where, user_ids="ravi")
    with pytest.raises(ValueError, match="from_date_added"):
        attrs.evolve(where, to_date_added=SAMPLE_MS - 1)


def test_unset_filter_has_no_params() -> None:
    """With nothing but a scope, no filter parameter is sent (campaignId is the request's)."""
    assert [w.params() for w in both_scopes()] == [[], []]


def test_params_follow_the_spec_order() -> None:
    """userIds first, then fromDateAdded, toDateAdded, fromDateScheduled, toDateScheduled."""
    where = CallbackFilter.tenant(
        to_date_scheduled=SAMPLE_MS + 3,
        from_date_scheduled=SAMPLE_MS + 2,
        to_date_added=SAMPLE_MS + 1,
        from_date_added=SAMPLE_MS,
        user_ids=["maria"],
    )
    assert [name for name, _ in where.params()] == [
        "userIds",
        "fromDateAdded",
        "toDateAdded",
        "fromDateScheduled",
        "toDateScheduled",
    ]


# --------------------------------------------------------------------------
# repr in words


def test_repr_of_a_bare_scope() -> None:
    """A bare filter names its scope only."""
    campaign, tenant = both_scopes()
    assert repr(campaign) == "<CallbackFilter campaign 6>"
    assert repr(tenant) == "<CallbackFilter the whole tenant>"


def test_repr_says_users_and_bounds_in_utc_iso() -> None:
    """Users and bounds are said in words, bounds as UTC ISO instants whatever the input zone."""
    ist = timezone(timedelta(hours=5, minutes=30))
    where = CallbackFilter.campaign(
        7,
        user_ids=["asha", "li"],
        from_date_added=SAMPLE_DT.astimezone(ist),
        to_date_added=SAMPLE_MS + 1000,
        to_date_scheduled=SAMPLE_MS,
    )
    assert where.describe() == (
        "campaign 7; users asha, li; added 2018-03-20T09:43:58.782Z to 2018-03-20T09:43:59.782Z;"
        " scheduled up to 2018-03-20T09:43:58.782Z"
    )
    assert repr(where) == f"<CallbackFilter {where.describe()}>"
    assert (
        "from 2018-03-20T09:43:58.782Z"
        in CallbackFilter.tenant(from_date_scheduled=SAMPLE_MS).describe()
    )
