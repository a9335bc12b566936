"""Fixtures the test modules share; plain helpers and sample data are in ``_support.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
import respx
import stamina
from _support import BASE, fake_http

if TYPE_CHECKING:
    from ameyo_callbacks.testing import FakeAmeyo


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router answering at ``_support.BASE``; a request it has no route for fails."""
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def zero_backoff() -> Iterator[None]:
    """Stamina's back-off sleeps become 0; the policy's own attempt count still applies.

    Opt in with ``pytestmark = pytest.mark.usefixtures("zero_backoff")``.
    """
    with stamina.set_testing(True, attempts=1000, cap=True):
        yield


@pytest.fixture
async def http(fake: FakeAmeyo) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client (:func:`_support.fake_http`) on the module's own ``fake`` fixture."""
    async with fake_http(fake) as client:
        yield client
