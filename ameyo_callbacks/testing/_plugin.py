"""pytest plugin (a ``pytest11`` entry point): the ``ameyo_fake`` fixture.

It imports nothing at load time beyond pytest itself: the fake is imported
when a test asks for the fixture, so installing this package never slows
down or breaks another project's test run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._app import FakeAmeyo

__all__ = ["ameyo_fake"]


@pytest.fixture
def ameyo_fake() -> FakeAmeyo:
    """A fresh :class:`~ameyo_callbacks.testing.FakeAmeyo` with 250 seeded callbacks.

    Campaigns 6, 7 and 8; ``ameyo_fake.client()`` is a client wired to it
    in-process, with a valid session.
    """
    from . import FakeAmeyo  # noqa: PLC0415  (imported when used, see module docstring)

    return FakeAmeyo.seeded(250)
