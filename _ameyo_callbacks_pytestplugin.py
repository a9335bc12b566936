"""pytest plugin of ameyo-callbacks (the ``pytest11`` entry point): the ``ameyo_fake`` fixture.

A top-level module on purpose (Hypothesis ships ``_hypothesis_pytestplugin``
for the same reason): pytest loads every installed plugin in every test run,
and a module inside ``ameyo_callbacks`` would first import the package, that
is httpx, attrs, cattrs and anyio. This one imports pytest only; the fake
and the client are imported when a test asks for the fixture, so installing
ameyo-callbacks never slows down or breaks another project's test run
(``tests/test_import_cost.py`` checks ``sys.modules``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ameyo_callbacks.testing import FakeAmeyo

__all__ = ["ameyo_fake"]


@pytest.fixture
def ameyo_fake() -> FakeAmeyo:
    """A fresh :class:`~ameyo_callbacks.testing.FakeAmeyo` with 250 seeded callbacks.

    Campaigns 6, 7 and 8; ``ameyo_fake.client()`` is a client wired to it
    in-process, with a valid session.
    """
    from ameyo_callbacks.testing import FakeAmeyo  # noqa: PLC0415  (see the module docstring)

    return FakeAmeyo.seeded(250)
