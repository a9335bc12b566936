"""The packages' lazily loaded names: listed by ``dir()`` before use, loaded as they are.

``import ameyo_callbacks`` (and ``ameyo_callbacks.testing``) loads no public
name until one is used; ``dir()`` (what a REPL or an IDE completes from) lists
them all the same, without loading any. Fresh interpreters show this, since
this test process has long loaded everything. httpx, which we import without
its command line, still runs that command line when ``httpx.main()`` is called.
"""

from __future__ import annotations

import json
import os
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


def test_default_timeout_carries_no_module_of_its_own() -> None:
    """A value (not a class) is exported as it is: no ``__module__`` is set on the instance."""
    assert "__module__" not in vars(ameyo_callbacks.DEFAULT_TIMEOUT)


HTTPX_CLI_ON_FIRST_USE = """
import sys
import ameyo_callbacks
ameyo_callbacks.CallbackFilter  # loads httpx, as httpx loads itself
import httpx
print("loaded before:", "httpx._main" in sys.modules)
sys.argv = ["httpx", "--help"]
try:
    httpx.main()
except SystemExit as exc:
    print("exit:", exc.code)
print("loaded after:", "httpx._main" in sys.modules)
"""


def test_httpx_command_line_still_runs_when_called() -> None:
    """httpx loads through us as it loads itself: ``httpx.main()`` is its real command line."""
    for needed in ("click", "rich", "pygments"):  # httpx's CLI extra (our cli extra has them)
        pytest.importorskip(needed)
    done = subprocess.run(  # noqa: S603  (our own interpreter, our own code)
        [sys.executable, "-c", HTTPX_CLI_ON_FIRST_USE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1"},
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "loaded before: True"  # click and rich are installed: httpx loads its CLI
    assert "Usage: httpx <URL> [OPTIONS]" in done.stdout
    assert lines[-2:] == ["exit: 0", "loaded after: True"]
