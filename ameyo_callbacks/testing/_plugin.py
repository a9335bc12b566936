"""The ``ameyo_fake`` fixture, for ``pytest_plugins = ["ameyo_callbacks.testing._plugin"]``.

The installed plugin (the ``pytest11`` entry point) is the top-level module
``_ameyo_callbacks_pytestplugin``: loading it imports pytest only, where this
module, inside the package, imports the package first. Both give the same
fixture; this name is kept for code that lists it in ``pytest_plugins``.
"""

from _ameyo_callbacks_pytestplugin import ameyo_fake

__all__ = ["ameyo_fake"]
