"""The packages' lazily loaded names: listed by ``dir()`` before use, loaded as they are.

``import ameyo_callbacks`` (and ``ameyo_callbacks.testing``) loads no public
name until one is used; ``dir()`` (what a REPL or an IDE completes from) lists
them all the same, without loading any. Fresh interpreters show this, since
this test process has long loaded everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

import ameyo_callbacks

LIST_WITHOUT_LOADING = """
import json, sys
import {package} as package
names = dir(package)
print(json.dumps({{
    "all": list(package.__all__),
    "dir": names,
    "loaded": sorted(m for m in sys.modules if m.startswith("{package}.")),
}}))
"""


def fresh(package: str) -> dict[str, list[str]]:
    """``dir()`` of ``package`` in a new interpreter, and the submodules loaded by then."""
    code = LIST_WITHOUT_LOADING.format(package=package)
    done = subprocess.run(  # noqa: S603  (our own interpreter, our own code)
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    ("package", "heavy"),
    [
        ("ameyo_callbacks", "ameyo_callbacks._client"),
        ("ameyo_callbacks.testing", "ameyo_callbacks.testing._app"),
    ],
)
def test_dir_lists_every_public_name_without_loading_it(package: str, heavy: str) -> None:
    """dir() holds all of __all__, sorted, while the modules behind the names stay unloaded."""
    seen = fresh(package)
    assert set(seen["all"]) <= set(seen["dir"])
    assert seen["dir"] == sorted(seen["dir"])
    assert heavy not in seen["loaded"]


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    """A name the package does not export: AttributeError naming the package and the name."""
    with pytest.raises(AttributeError, match="module 'ameyo_callbacks' has no attribute 'Cliet'"):
        _ = ameyo_callbacks.Cliet  # type: ignore[attr-defined]


def test_default_timeout_is_httpxs_timeout() -> None:
    """DEFAULT_TIMEOUT is an httpx.Timeout a caller can pass to httpx itself."""
    timeout = ameyo_callbacks.DEFAULT_TIMEOUT
    assert isinstance(timeout, httpx.Timeout)
    assert httpx.Timeout(timeout) == timeout


@pytest.mark.xfail(
    strict=True,
    reason="bug: __init__._load skips values whose type's __module__ is 'httpx._config', but "
    "httpx shows Timeout as 'httpx', so DEFAULT_TIMEOUT gets an instance __module__ stamped",
)
def test_default_timeout_carries_no_module_of_its_own() -> None:
    """A value (not a class) is exported as it is: no ``__module__`` is set on the instance."""
    assert "__module__" not in vars(ameyo_callbacks.DEFAULT_TIMEOUT)
