"""Bulk deletes: bounded concurrency, an outcome for every id, a mutation-safe delete_matching."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType

import anyio
import attrs

from ._checks import check_bool, check_int, check_strings
from ._compat import ExceptionGroup
from ._limits import AdaptiveConcurrency
from ._paging import CallbackIterator, PageFetcher
from ._protocol import check_callback_id
from .exceptions import AmeyoError, CallbackNotFoundError, IncompleteDeleteError

__all__ = [
    "BulkDeleteResult",
    "BulkProgress",
    "BulkTally",
    "DeleteOne",
    "delete_callbacks",
    "delete_matching",
]

#: delete_one(id): returns when deleted, raises CallbackNotFoundError or another AmeyoError.
DeleteOne = Callable[[str], Awaitable[None]]

DEFAULT_MAX_ROUNDS = 5


@attrs.frozen
class BulkProgress:
    """Running counts of a bulk delete, handed to ``on_progress`` after each outcome.

    ``limit`` is how many deletes may be in flight now: the fixed
    ``concurrency``, or with ``concurrency="auto"`` the adaptive limit's
    current value (it climbs while the server keeps up, drops when it queues
    or throttles).
    """

    read: int
    deleted: int
    not_found: int
    failed: int
    in_flight: int
    limit: int = 0

    @property
    def done(self) -> int:
        """Ids with an outcome so far."""
        return self.deleted + self.not_found + self.failed


@attrs.frozen
class BulkDeleteResult:
    """What happened to every id of a bulk delete.

    Every id read from the input (duplicates once) is in exactly one of
    ``deleted``, ``not_found`` (the server said it does not exist),
    ``failed`` (id -> the error, after the client's retries) and
    ``not_attempted`` (read, but never sent: the run was cancelled).
    ``matched`` lists the ids a ``delete_matching`` walk found (with
    ``dry_run`` nothing else is filled in).
    """

    deleted: tuple[str, ...] = ()
    not_found: tuple[str, ...] = ()
    failed: Mapping[str, AmeyoError] = attrs.field(
        factory=lambda: MappingProxyType({}), repr=lambda m: repr(dict(m))
    )
    not_attempted: tuple[str, ...] = ()
    matched: tuple[str, ...] = ()
    duplicates: int = 0
    cancelled: bool = False
    dry_run: bool = False

    @property
    def total(self) -> int:
        """Distinct ids accounted for."""
        return len(self.deleted) + len(self.not_found) + len(self.failed) + len(self.not_attempted)

    @property
    def counts(self) -> dict[str, int]:
        """``{"deleted": n, "not_found": n, "failed": n, "not_attempted": n}``."""
        return {
            "deleted": len(self.deleted),
            "not_found": len(self.not_found),
            "failed": len(self.failed),
            "not_attempted": len(self.not_attempted),
        }

    @property
    def ok(self) -> bool:
        """True when no id failed and every id read was attempted."""
        return not self.failed and not self.not_attempted and not self.cancelled

    def raise_for_failures(self) -> None:
        """Raise an ``ExceptionGroup`` of the failures, if there are any."""
        if self.failed:
            msg = f"{len(self.failed)} of {self.total} callback deletes failed"
            raise ExceptionGroup(msg, list(self.failed.values()))


class BulkTally:
    """The live accounting of a bulk delete; pass one in to read it after a cancellation.

    ``delete_callbacks`` and ``delete_matching`` fill the tally as they go. If
    the caller's cancel scope or timeout stops the run, the coroutine never
    returns its result, but ``tally.result()`` still accounts for every id
    read: an id cancelled in flight is ``failed`` with an
    :class:`IncompleteDeleteError` (it may or may not be deleted: re-running
    is safe), an id read but never sent is ``not_attempted``.
    """

    __slots__ = (
        "_cancelled",
        "_deleted",
        "_dry_run",
        "_duplicates",
        "_failed",
        "_in_flight",
        "_limit",
        "_matched",
        "_not_attempted",
        "_not_found",
        "_on_progress",
        "_seen",
    )

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._deleted: list[str] = []
        self._not_found: list[str] = []
        self._failed: dict[str, AmeyoError] = {}
        self._not_attempted: list[str] = []
        self._matched: list[str] = []
        self._in_flight: set[str] = set()
        self._duplicates = 0
        self._cancelled = False
        self._dry_run = False
        self._on_progress: Callable[[BulkProgress], None] | None = None
        self._limit: int | AdaptiveConcurrency = 0

    def progress(self) -> BulkProgress:
        """The running counts."""
        return BulkProgress(
            read=len(self._seen) + self._duplicates,
            deleted=len(self._deleted),
            not_found=len(self._not_found),
            failed=len(self._failed),
            in_flight=len(self._in_flight),
            limit=self._limit if isinstance(self._limit, int) else self._limit.limit,
        )

    def result(self) -> BulkDeleteResult:
        """A snapshot of the outcome of every id read so far."""
        return BulkDeleteResult(
            deleted=tuple(self._deleted),
            not_found=tuple(self._not_found),
            failed=MappingProxyType(dict(self._failed)),
            not_attempted=tuple(self._not_attempted),
            matched=tuple(self._matched),
            duplicates=self._duplicates,
            cancelled=self._cancelled,
            dry_run=self._dry_run,
        )

    # -- bookkeeping, in the order an id goes through it -------------------

    def _admit(self, cb_id: str) -> bool:
        """Count an id read from the input; False for a duplicate."""
        if cb_id in self._seen:
            self._duplicates += 1
            return False
        self._seen.add(cb_id)
        self._in_flight.add(cb_id)
        return True

    def _settle(
        self, cb_id: str, bucket: list[str] | None, error: AmeyoError | None = None
    ) -> None:
        self._in_flight.discard(cb_id)
        if bucket is not None:
            bucket.append(cb_id)
        else:
            assert error is not None  # noqa: S101
            self._failed[cb_id] = error
        if self._on_progress is not None:
            self._on_progress(self.progress())

    def _interrupt(self, cb_id: str) -> None:
        """The run stopped while the delete of ``cb_id`` was in flight."""
        self._cancelled = True
        if cb_id in self._in_flight:
            self._in_flight.discard(cb_id)
            self._failed[cb_id] = IncompleteDeleteError(
                f"cancelled before the server answered the delete of {cb_id!r}; "
                "it may or may not be deleted (deleting it again is safe)"
            )

    def _skip(self, ids: Iterable[str]) -> None:
        """The run stopped before these ids (found by a walk) were sent."""
        self._cancelled = True
        self._not_attempted.extend(cb_id for cb_id in ids if cb_id not in self._seen)

    def _unconfirm(self, ids: set[str]) -> None:
        """These ids were answered OK but a later walk still lists them."""
        self._deleted = [cb_id for cb_id in self._deleted if cb_id not in ids]
        for cb_id in ids:
            self._failed[cb_id] = IncompleteDeleteError(
                f"the server confirmed the delete of {cb_id!r} but still lists it"
            )

    def _was_attempted(self, cb_id: str) -> bool:
        return cb_id in self._seen


#: A fixed number of deletes in flight, or an adaptive limit (``concurrency="auto"``).
Concurrency = int | AdaptiveConcurrency


def _check_concurrency(concurrency: object) -> Concurrency:
    if isinstance(concurrency, AdaptiveConcurrency):
        return concurrency
    return check_int("concurrency", concurrency, minimum=1)


async def _aiter(ids: Iterable[str] | AsyncIterable[str]) -> AsyncGenerator[str, None]:
    if isinstance(ids, AsyncIterable):
        async for cb_id in ids:
            yield cb_id
    else:
        for cb_id in ids:
            yield cb_id


def _invalid_id(cb_id: object) -> IncompleteDeleteError | None:
    try:
        check_callback_id(cb_id)
    except (TypeError, ValueError) as exc:
        return IncompleteDeleteError(f"not a callback id: {exc}")
    return None


async def _delete_into(tally: BulkTally, delete_one: DeleteOne, cb_id: str) -> None:
    """Delete one id and settle its outcome in the tally."""
    try:
        await delete_one(cb_id)
    except CallbackNotFoundError:
        tally._settle(cb_id, tally._not_found)
    except AmeyoError as exc:
        tally._settle(cb_id, None, exc)
    except BaseException:
        tally._interrupt(cb_id)
        raise
    else:
        tally._settle(cb_id, tally._deleted)


async def _run_deletes(
    delete_one: DeleteOne,
    ids: Iterable[str] | AsyncIterable[str],
    tally: BulkTally,
    concurrency: Concurrency,
) -> None:
    """A pool of workers pulling ids from one lazy source, ``concurrency`` in flight.

    With an :class:`AdaptiveConcurrency`, ``max_limit`` workers run and each
    holds one of its permits from taking an id to the delete's outcome.
    """
    tally._limit = concurrency
    source = _aiter(ids)
    read_lock = anyio.Lock()
    exhausted = False

    async def next_id() -> str | None:
        nonlocal exhausted
        async with read_lock:
            while not exhausted:
                try:
                    cb_id = await source.__anext__()
                except StopAsyncIteration:
                    exhausted = True
                    return None
                invalid = _invalid_id(cb_id)
                if invalid is not None:
                    key = repr(cb_id)
                    if tally._admit(key):
                        tally._settle(key, None, invalid)
                    continue
                if tally._admit(cb_id):
                    return cb_id
            return None

    async def worker() -> None:
        while (cb_id := await next_id()) is not None:
            await _delete_into(tally, delete_one, cb_id)

    async def adaptive_worker(limiter: AdaptiveConcurrency) -> None:
        while True:
            async with limiter:
                cb_id = await next_id()
                if cb_id is None:
                    return
                await _delete_into(tally, delete_one, cb_id)

    try:
        async with anyio.create_task_group() as tg:
            if isinstance(concurrency, AdaptiveConcurrency):
                for _ in range(concurrency.max_limit):
                    tg.start_soon(adaptive_worker, concurrency)
            else:
                for _ in range(concurrency):
                    tg.start_soon(worker)
    except (anyio.get_cancelled_exc_class(), KeyboardInterrupt):
        tally._cancelled = True
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()


async def delete_callbacks(
    delete_one: DeleteOne,
    ids: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: Concurrency = 8,
    on_progress: Callable[[BulkProgress], None] | None = None,
    tally: BulkTally | None = None,
) -> BulkDeleteResult:
    """Delete ``ids`` with at most ``concurrency`` requests in flight.

    ``concurrency`` is an int, or an :class:`AdaptiveConcurrency` (what the
    client's ``concurrency="auto"`` passes) whose limit follows the server.

    The input is read lazily, one id per free worker; duplicates are
    deleted once and counted in ``duplicates``. A failing id never stops
    the others: API and transport errors (after the client's retries)
    become ``failed`` outcomes. Pass a :class:`BulkTally` to read the
    outcome after a cancellation.
    """
    concurrency = _check_concurrency(concurrency)
    if not isinstance(ids, AsyncIterable):
        check_strings("ids", ids)
    tally = tally if tally is not None else BulkTally()
    tally._on_progress = on_progress
    await _run_deletes(delete_one, ids, tally, concurrency)
    return tally.result()


async def _collect(fetch: PageFetcher) -> list[str]:
    """Every id the filter matches, by an exact walk (see _paging): on a live list too.

    Every record present from the walk's first request to its last is in
    the result, whatever the server's order (see _planner).
    """
    seen: dict[str, None] = {}
    async with CallbackIterator(fetch) as walk:
        async for record in walk:
            seen[record.customer_callback_id] = None
    return list(seen)


async def delete_matching(
    fetch: PageFetcher,
    delete_one: DeleteOne,
    *,
    concurrency: Concurrency = 8,
    dry_run: bool = False,
    on_progress: Callable[[BulkProgress], None] | None = None,
    tally: BulkTally | None = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> BulkDeleteResult:
    """Delete every record the filter matches, skipping none.

    Strategy: *collect, then delete, then look again*. Walking offset pages
    while deleting skips records, because each delete shifts the later
    pages down. So each round first walks the whole filter without deleting
    (the pages do not move under the walk), then deletes the ids it found
    that were never attempted, with ``concurrency`` requests in flight. The
    next round walks again: records added meanwhile are deleted in turn.

    Termination: every round either deletes at least one id never attempted
    before or ends the run, so it ends once the server stops showing new
    ids, and after ``max_rounds`` rounds at most. An id the server answered
    ``OK`` to but still lists on the next walk is moved to ``failed``
    (:class:`IncompleteDeleteError`): a server that ignores deletes makes
    this stop, not loop. ``dry_run`` walks once and returns the ids in
    ``matched``, deleting nothing.
    """
    concurrency = _check_concurrency(concurrency)
    check_int("max_rounds", max_rounds, minimum=1)
    check_bool("dry_run", dry_run)
    tally = tally if tally is not None else BulkTally()
    tally._on_progress = on_progress
    tally._dry_run = dry_run
    confirmed: set[str] = set()
    for _ in range(max_rounds):
        try:
            listed = await _collect(fetch)
        except (anyio.get_cancelled_exc_class(), KeyboardInterrupt):
            tally._cancelled = True  # stopped mid-walk: the run is not complete
            raise
        if dry_run:
            tally._matched.extend(listed)
            break
        still_there = confirmed.intersection(listed)
        if still_there:
            tally._unconfirm(still_there)
            confirmed -= still_there
        fresh = [cb_id for cb_id in listed if not tally._was_attempted(cb_id)]
        tally._matched.extend(fresh)
        if not fresh:
            break
        try:
            await _run_deletes(delete_one, fresh, tally, concurrency)
        except BaseException:
            tally._skip(fresh)
            raise
        confirmed.update(tally._deleted)
    return tally.result()
