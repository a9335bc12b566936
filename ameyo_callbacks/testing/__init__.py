"""A fake Ameyo server to test against, and pytest helpers.

:class:`FakeAmeyo` is an in-memory Ameyo CallBack API server written as a raw
ASGI application: use it in-process (``fake.client()``, through
``httpx.ASGITransport``, no socket) or on a loopback socket (:func:`serve`,
needs ``pip install 'ameyo-callbacks[fake]'``). It injects faults on demand
(:class:`Fault`, :class:`FaultPlan`, ``fake.script(...)``) and logs every
request (:class:`RequestLogEntry`).

The pytest plugin gives a fixture, ``ameyo_fake``::

    async def test_lists(ameyo_fake):
        async with ameyo_fake.client() as client:
            page = await client.get_campaign_callbacks(6, limit=10)
        assert len(page) == 10

Run one from a shell: ``python -m ameyo_callbacks.testing --port 8888``.

Names are imported on first use, so that loading the pytest plugin costs
nothing.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from ._app import FakeAmeyo, RequestLogEntry
    from ._faults import FAULT_KINDS, DroppedConnection, Fault, FaultPlan
    from ._helpers import FAKE_BASE_URL
    from ._server import serve, serve_async

__all__ = [
    "FAKE_BASE_URL",
    "FAULT_KINDS",
    "DroppedConnection",
    "FakeAmeyo",
    "Fault",
    "FaultPlan",
    "RequestLogEntry",
    "serve",
    "serve_async",
]

_HOME = {
    "FAKE_BASE_URL": "._helpers",
    "FAULT_KINDS": "._faults",
    "DroppedConnection": "._faults",
    "FakeAmeyo": "._app",
    "Fault": "._faults",
    "FaultPlan": "._faults",
    "RequestLogEntry": "._app",
    "serve": "._server",
    "serve_async": "._server",
}


def __getattr__(name: str) -> typing.Any:
    home = _HOME.get(name)
    if home is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
