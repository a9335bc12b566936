"""The public surface: ``__all__`` lists exactly what the package exports, sorted."""

from __future__ import annotations

import inspect
import re
import types

import pytest

import ameyo_callbacks
from ameyo_callbacks import exceptions


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
    """exceptions.__all__ is exactly the public names the module defines (not its imports)."""
    defined = {
        name
        for name in public_attributes(exceptions)
        if getattr(getattr(exceptions, name), "__module__", None) == exceptions.__name__
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
