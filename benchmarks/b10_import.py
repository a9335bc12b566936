"""B10 import cost: `import ameyo_callbacks` and loading the pytest plugin.

Each figure is the median over runs of ``python -X importtime`` in a fresh
interpreter (cumulative microseconds of the module), bytecode cached in a
temporary directory first, against a baseline measured in the same run:
plain ``import httpx`` (which loads httpx's command line, click and rich,
when they are installed) and ``import pytest``. Targets (issue 16): the
package at most 120 ms, the plugin at most 20 ms on this machine. The import
graphs themselves (no aiohttp, no CLI libraries, pytest only for the plugin)
are held by tests/test_import_cost.py.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

import _common as c

NAME = "B10"
RUNS = 9
PACKAGE_TARGET_MS = 120.0
PLUGIN_TARGET_MS = 20.0


def importtime_ms(statement: str, module: str, env: dict[str, str]) -> float:
    """Cumulative import time of ``module`` (ms) when a fresh interpreter runs ``statement``."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    for line in out.stderr.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() == module:
            return int(fields[1]) / 1000
    msg = f"{module} not in the importtime report of {statement!r}"
    raise RuntimeError(msg)


def main() -> None:
    cases = {
        "import httpx (baseline)": ("import httpx", "httpx"),
        "import ameyo_callbacks": ("import ameyo_callbacks", "ameyo_callbacks"),
        "import pytest (baseline)": ("import pytest", "pytest"),
        "plugin module after pytest": (
            "import pytest, _ameyo_callbacks_pytestplugin",
            "_ameyo_callbacks_pytestplugin",
        ),
    }
    with c.section("B10 import cost"), tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for statement, module in cases.values():  # write the bytecode once
            importtime_ms(statement, module, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(RUNS):
            for name, (statement, module) in cases.items():
                times[name].append(importtime_ms(statement, module, env))
        ms = {name: statistics.median(values) for name, values in times.items()}
        for name, value in ms.items():
            c.report(NAME, f"{name} (median of {RUNS})", value, unit="ms")
        c.report(
            NAME,
            "import ameyo_callbacks",
            ms["import ameyo_callbacks"],
            unit="ms",
            at_most=PACKAGE_TARGET_MS,
        )
        c.report(
            NAME,
            "pytest plugin load",
            ms["plugin module after pytest"],
            unit="ms",
            at_most=PLUGIN_TARGET_MS,
        )
        c.report(
            NAME,
            "ameyo_callbacks / plain httpx",
            ms["import ameyo_callbacks"] / ms["import httpx (baseline)"],
        )


if __name__ == "__main__":
    main()
