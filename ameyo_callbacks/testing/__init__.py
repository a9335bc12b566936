"""A fake Ameyo server to test against, and pytest helpers.

:class:`FakeAmeyo` is an in-memory Ameyo CallBack API server written as a raw
ASGI application: use it in-process (``fake.client()``, through
``httpx.ASGITransport``, no socket) or on a loopback socket (:func:`serve`,
needs ``pip install 'ameyo-callbacks[fake]'``). It injects faults on demand
(:class:`Fault`, :class:`FaultPlan`, ``fake.script(...)``) and logs every
request (:class:`RequestLogEntry`). :func:`no_retry_waits` makes every
client's retry back-off 0 s inside a block. In live mode (``fake.live(rate=50)``) its
list changes while clients read it, each change recorded as a :class:`Change`.

The pytest plugin gives a fixture, ``ameyo_fake``::

    from ameyo_callbacks import CallbackFilter

    async def test_lists(ameyo_fake):
        async with ameyo_fake.client() as client:
            page = await client.get_callbacks(CallbackFilter.campaign(6), limit=10)
        assert len(page) == 10

Run one from a shell: ``python -m ameyo_callbacks.testing --port 8888`` (the
same command as ``ameyo-callbacks fake-server``).

Names are imported on first use, so that loading the pytest plugin costs
nothing; each shows this package as its ``__module__``.
"""

import importlib
import types
import typing

if typing.TYPE_CHECKING:
    from .._retry import no_retry_waits
    from ._app import FakeAmeyo
    from ._faults import FAULT_KINDS, DroppedConnection, Fault, FaultPlan
    from ._helpers import FAKE_BASE_URL
    from ._limits import ServerLimits
    from ._live import Change
    from ._log import RequestLogEntry
    from ._server import serve, serve_async

__all__ = [
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
]

_HOME = {
    "FAKE_BASE_URL": "._helpers",
    "FAULT_KINDS": "._faults",
    "Change": "._live",
    "DroppedConnection": "._faults",
    "FakeAmeyo": "._app",
    "Fault": "._faults",
    "FaultPlan": "._faults",
    "RequestLogEntry": "._log",
    "ServerLimits": "._limits",
    "no_retry_waits": "ameyo_callbacks._retry",
    "serve": "._server",
    "serve_async": "._server",
}


def __getattr__(name: str) -> typing.Any:
    home = _HOME.get(name)
    if home is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home, __name__), name)
    if isinstance(value, (type, types.FunctionType)):
        value.__module__ = __name__  # the public path, in reprs, tracebacks and docs
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
