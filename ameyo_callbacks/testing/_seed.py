"""Seeded data: deterministic callbacks spread over campaigns, users and 30 days."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._columns import Rows

if TYPE_CHECKING:
    from ._store import CallbackStore

__all__ = ["DEFAULT_CAMPAIGNS", "DEFAULT_USERS", "SEED_START_MS", "seed_store"]

#: The agents and campaigns of seeded data (and of the examples in the docs).
DEFAULT_USERS = ("stieve", "asha", "ravi", "li", "maria")
DEFAULT_CAMPAIGNS = (6, 7, 8)

#: 2024-01-01T00:00:00Z, the start of the seeded "date added" range.
SEED_START_MS = 1_704_067_200_000
_DAY_MS = 86_400_000
_SEED_CHUNK = 100_000


def seed_store(
    store: CallbackStore,
    n: int,
    *,
    campaigns: Sequence[int],
    users: Sequence[str],
    seed: int,
    days: int = 30,
    start_ms: int = SEED_START_MS,
    bulk: int = 1,
) -> None:
    """Append ``n`` deterministic callbacks spread over campaigns, users and dates.

    Ids look like ``d806-59423051-cm-17`` (campaign, customer, sequence), and
    are unique. One callback in five is a campaign callback (``selfCallback``
    false, ``userId`` null); the rest belong to one of ``users``. Date added is
    uniform over ``days`` days from ``start_ms``; the callback is scheduled 10
    minutes to 14 days after it was added. ``bulk`` > 1: runs of 1 to
    ``bulk`` callbacks share one millisecond (bulk uploads).
    """
    if n < 0:
        msg = f"n must be >= 0, got {n}"
        raise ValueError(msg)
    if bulk < 1:
        msg = f"bulk must be >= 1 (callbacks per millisecond at most), got {bulk}"
        raise ValueError(msg)
    if not campaigns or not users:
        msg = "seeding needs at least one campaign id and one user id"
        raise ValueError(msg)
    rng = random.Random(f"ameyo-fake-seed-{seed}")
    rand: Callable[[], float] = rng.random
    span = days * _DAY_MS
    lead_min, lead_span = 10 * 60_000, 14 * _DAY_MS - 10 * 60_000
    done = 0
    while done < n:  # in chunks, so seeding a million rows never holds a million temporaries
        k = min(_SEED_CHUNK, n - done)
        first = store.row_count  # sequence numbers continue across seedings
        camp = rng.choices(campaigns, k=k)
        user_pick = rng.choices(users, k=k)
        self_cb = [rand() >= 0.2 for _ in range(k)]
        user_col = [u if s else None for u, s in zip(user_pick, self_cb, strict=True)]
        customers = [10_000_000 + int(rand() * 90_000_000) for _ in range(k)]
        added = sorted([start_ms + int(rand() * span) for _ in range(k)])
        j = 0
        while bulk > 1 and j < k:
            size = 1 + int(rand() * bulk)
            added[j : j + size] = [added[j]] * len(added[j : j + size])
            j += size
        times = [a + lead_min + int(rand() * lead_span) for a in added]
        phones = [f"+9198{int(rand() * 100_000_000):08d}" for _ in range(k)]
        ids = [
            f"d8{c % 100:02d}-{cust}-cm-{i}"
            for i, c, cust in zip(range(first, first + k), camp, customers, strict=True)
        ]
        rows = Rows(
            ids=ids,
            campaigns=camp,
            callback_times=times,
            self_callbacks=self_cb,
            users=user_col,
            phones=phones,
            customers=customers,
            added=added,
        )
        store.bulk_load(rows)
        done += k
