"""The public surface: ``__all__`` lists exactly what the package exports, sorted."""

from __future__ import annotations

import inspect
import re
import sys
import types

import httpx
import pytest

import ameyo_callbacks
from ameyo_callbacks import exceptions, testing


def isort_style_key(name: str) -> tuple[int, list[int | str]]:
    """The order of ruff's RUF022 (isort-style): CONSTANTS, then Classes, then the rest.

    Within a group names compare naturally: runs of digits as numbers.
    """
    if len(name) > 1 and name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    parts: list[int | str] = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return group, parts


def public_attributes(module: types.ModuleType) -> set[str]:
    """Names a user can import from ``module`` that are neither private nor submodules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("module", [ameyo_callbacks, exceptions], ids=lambda m: m.__name__)
def test_all_is_sorted_without_duplicates(module: types.ModuleType) -> None:
    """__all__ is in ruff's isort-style order and names nothing twice."""
    names = list(module.__all__)

    assert names == sorted(names, key=isort_style_key)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("module", [ameyo_callbacks, exceptions], ids=lambda m: m.__name__)
def test_every_name_in_all_exists(module: types.ModuleType) -> None:
    """Every name __all__ lists can be imported from the module."""
    missing = [name for name in module.__all__ if not hasattr(module, name)]

    assert missing == []


def test_package_all_lists_every_public_attribute() -> None:
    """Every public, non-module attribute of the package is listed in __all__."""
    unlisted = public_attributes(ameyo_callbacks) - set(ameyo_callbacks.__all__)

    assert unlisted == set()


def test_package_exports_its_version() -> None:
    """__version__ is exported and is a non-empty version string."""
    assert "__version__" in ameyo_callbacks.__all__
    assert isinstance(ameyo_callbacks.__version__, str)
    assert re.match(r"^\d+\.\d+", ameyo_callbacks.__version__)


def test_exceptions_all_lists_exactly_the_names_defined_there() -> None:
    """exceptions.__all__ is exactly the public names the module defines (not its imports).

    The package shows its classes at ``ameyo_callbacks`` (their ``__module__``), so a
    class "defined here" is one whose ``__module__`` is either path.
    """
    defined = {
        name
        for name in public_attributes(exceptions)
        if getattr(getattr(exceptions, name), "__module__", None)
        in (exceptions.__name__, ameyo_callbacks.__name__)
    }

    assert set(exceptions.__all__) == defined


def test_exceptions_all_lists_every_error_class() -> None:
    """Every exception class in the exceptions module is an AmeyoError listed in __all__."""
    classes = {
        name
        for name, value in vars(exceptions).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
    }

    assert classes == set(exceptions.__all__)
    assert all(issubclass(getattr(exceptions, name), exceptions.AmeyoError) for name in classes)


@pytest.mark.parametrize("name", exceptions.__all__)
def test_every_exception_is_reexported_from_the_package(name: str) -> None:
    """Each exception is importable from ameyo_callbacks, as the same class, and in its __all__."""
    assert name in ameyo_callbacks.__all__
    assert getattr(ameyo_callbacks, name) is getattr(exceptions, name)


# --------------------------------------------------------------------------
# Public names look public: obj.__module__ is the path users import from

# The only exported names that are values, not classes, functions or type aliases:
# an instance carries no __module__ of its own, so these are checked for what they are.
PLAIN_CONSTANTS: dict[str, type | tuple[type, ...]] = {
    "ameyo_callbacks.DEFAULT_TIMEOUT": httpx.Timeout,
    "ameyo_callbacks.__version__": str,
    "ameyo_callbacks.testing.FAKE_BASE_URL": str,
    "ameyo_callbacks.testing.FAULT_KINDS": tuple,
}
EXPORTS = [
    pytest.param(module, name, id=f"{module.__name__}.{name}")
    for module in (ameyo_callbacks, testing)
    for name in module.__all__
]


@pytest.mark.parametrize(("module", "name"), EXPORTS)
def test_every_exported_name_shows_its_public_module(module: types.ModuleType, name: str) -> None:
    """__module__ of each export is the package it is imported from, not a private module."""
    value = getattr(module, name)
    key = f"{module.__name__}.{name}"
    if key in PLAIN_CONSTANTS:
        assert isinstance(value, PLAIN_CONSTANTS[key])
        return
    assert value.__module__ == module.__name__


@pytest.mark.parametrize(
    ("module", "name"),
    [
        p
        for p in EXPORTS
        if inspect.isclass(value := getattr(*p.values)) or inspect.isfunction(value)
    ],
)
def test_every_exported_class_and_function_is_found_at_its_public_path(
    module: types.ModuleType, name: str
) -> None:
    """<__module__>.<__qualname__> leads back to the object (pickle, docs and tracebacks use it)."""
    value = getattr(module, name)
    assert getattr(sys.modules[value.__module__], value.__qualname__) is value


def test_plain_constants_are_exported() -> None:
    """The names exempt from the __module__ check are real exports (the list is not stale)."""
    exported = {f"{m.__name__}.{n}" for m in (ameyo_callbacks, testing) for n in m.__all__}
    assert set(PLAIN_CONSTANTS) <= exported


def test_testing_all_is_sorted_and_lists_every_public_attribute() -> None:
    """ameyo_callbacks.testing.__all__: sorted, no duplicates, every public attribute listed."""
    names = list(testing.__all__)
    assert names == sorted(names, key=isort_style_key)
    assert len(names) == len(set(names))
    assert public_attributes(testing) - set(names) == set()
    assert [name for name in names if not hasattr(testing, name)] == []


def test_repr_of_a_public_class_shows_the_public_path() -> None:
    """A class's repr names ameyo_callbacks, as a user would import it."""
    assert repr(ameyo_callbacks.CallbackFilter) == "<class 'ameyo_callbacks.CallbackFilter'>"
    assert repr(testing.FakeAmeyo) == "<class 'ameyo_callbacks.testing.FakeAmeyo'>"
