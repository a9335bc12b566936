"""What importing the package and loading the pytest plugin cost: the import graphs.

Each check runs a fresh interpreter and reads its ``sys.modules``, so nothing
this test process already imported can hide or fake a heavy import.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

from _support import unmeasured_env

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover  (tomli comes with the cli extra on 3.10)
    import tomli as tomllib

# What no one should pay for by importing the client library
CLI_LIBRARIES = ("click", "rich", "pygments", "uvicorn", "tomli")
ASYNC_HTTP_STACK = ("aiohttp", "httpx_aiohttp")


def modules_after(code: str, *, env: dict[str, str] | None = None) -> set[str]:
    """The names in ``sys.modules`` after a fresh interpreter runs ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=unmeasured_env(**(env or {})),
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def loaded(modules: set[str], *roots: str) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots)


def test_import_package_loads_no_dependency() -> None:
    """`import ameyo_callbacks` loads none of its dependencies: names load on first use."""
    modules = modules_after("import ameyo_callbacks")
    assert "ameyo_callbacks" in modules  # the check can see an import
    assert loaded(modules, "httpx", "httpcore", "attrs", "attr", "cattrs", "anyio") == []
    assert loaded(modules, *ASYNC_HTTP_STACK, *CLI_LIBRARIES) == []
    assert not {"ameyo_callbacks.cli", "ameyo_callbacks.testing"} & modules


def test_first_name_used_loads_httpx_but_not_aiohttp_nor_our_cli() -> None:
    """Using a public name loads httpx, but neither aiohttp nor our command line."""
    modules = modules_after("import ameyo_callbacks\nameyo_callbacks.CallbackFilter")
    assert "httpx" in modules
    assert loaded(modules, *ASYNC_HTTP_STACK, "uvicorn", "tomli") == []
    assert "ameyo_callbacks.cli" not in modules


def test_client_names_load_neither_aiohttp_nor_our_cli() -> None:
    """Building a default client object (no request yet) still leaves aiohttp unloaded."""
    modules = modules_after(
        "from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter\n"
        "client = AmeyoCallbacksClient('http://127.0.0.1:9', session_id='s')\n"
        "CallbackFilter.campaign(6, user_ids=['asha'])\n"
    )
    assert "ameyo_callbacks._client" in modules
    assert loaded(modules, *ASYNC_HTTP_STACK, "uvicorn", "tomli") == []
    assert "ameyo_callbacks.cli" not in modules


def test_import_and_a_call_leave_other_libraries_as_they_were() -> None:
    """Our import and a request add no logger filter and leave ``httpx.main`` httpx's own."""
    code = (
        "import asyncio, logging\n"
        "filters = list(logging.getLogger('stamina').filters)\n"
        "import ameyo_callbacks as a\n"
        "async def call():\n"
        "    async with a.AmeyoCallbacksClient(\n"
        "        'http://127.0.0.1:9', session_id='s', retry=a.RetryPolicy.none()\n"
        "    ) as c:\n"
        "        try:\n"
        "            await c.get_callbacks(a.CallbackFilter.campaign(6))\n"
        "        except a.TransportError:\n"
        "            pass\n"
        "asyncio.run(call())\n"
        "import httpx, httpx._main  # click and rich are installed here\n"
        "assert httpx.main is httpx._main.main, 'httpx.main replaced'\n"
        "assert logging.getLogger('stamina').filters == filters, 'filter added'\n"
    )
    assert "ameyo_callbacks._client" in modules_after(code)


def test_plugin_entry_point_imports_pytest_only() -> None:
    """The installed pytest11 entry point loads without ameyo_callbacks, httpx or aiohttp."""
    (point,) = [ep for ep in entry_points(group="pytest11") if ep.name == "ameyo_callbacks"]
    modules = modules_after(
        "import pytest, sys\n"
        "before = set(sys.modules)\n"
        "from importlib.metadata import entry_points\n"
        f"(ep,) = [e for e in entry_points(group='pytest11') if e.value == {point.value!r}]\n"
        "ep.load()\n"
    )
    assert point.value in modules
    assert loaded(modules, "ameyo_callbacks", "httpx", "httpcore", *ASYNC_HTTP_STACK) == []
    assert loaded(modules, "attrs", "attr", "cattrs", "anyio") == []


def test_pytest_run_with_the_plugin_imports_httpx_only_when_the_fixture_is_used(
    tmp_path: Path,
) -> None:
    """In a pytest run, httpx arrives with the first test that asks for ameyo_fake."""
    (tmp_path / "test_other.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_a_project_that_never_uses_the_fake(request):
                assert request.config.pluginmanager.has_plugin("_ameyo_callbacks_pytestplugin")
                assert "httpx" not in sys.modules
                assert "ameyo_callbacks" not in sys.modules

            def test_z_the_fixture_brings_the_fake(ameyo_fake):
                assert len(ameyo_fake) == 250
                assert "httpx" in sys.modules
            """
        ),
        encoding="utf-8",
    )
    # Autoload off: other installed plugins (respx's imports httpx) must not
    # hide ours; -p loads ours by its module name, as the entry point does.
    env = unmeasured_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    out = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "_ameyo_callbacks_pytestplugin",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-W",
            "error",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout


def test_a_default_install_brings_neither_aiohttp_nor_stamina() -> None:
    """aiohttp comes with the aiohttp extra (and the cli extra through it), never by default."""
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))
    project = project["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\s\[<>=;!~]", r, maxsplit=1)[0].lower() for r in requirements}

    assert not names(project["dependencies"]) & {"aiohttp", "yarl", "stamina"}
    extras = project["optional-dependencies"]
    assert {"aiohttp", "yarl"} <= names(extras["aiohttp"])
    assert "ameyo-callbacks[aiohttp]" in extras["cli"]
