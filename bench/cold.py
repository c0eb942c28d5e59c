"""Cold first step: a fresh interpreter per round, so every import, entry-point scan and manifest
load is paid again, exactly as on a worker that has just started.

The row held to the targets is a fresh worker with no cache directory (a new container with a
read-only home: `HOME` an empty directory, `AZURE_OPENAI_CONNECTOR_CACHE_DIR=""`) running the
package as a worker's image has it: this tree's wheel, built and installed into a folder of its own
at the start of the run. The floor is importing what that first step cannot do without
(`requests`, `yaml`, `pluggy`). The source checkout (an editable install, which parses the YAML) is
reported beside it. The commands run in rotating order each round, so they share the noise. Each
time is the whole process, spawn to exit, measured from the parent with perf_counter_ns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from .common import (API_KEY, CHAT_MESSAGES, OPENAI_MISSING, Benchmark, alternate, have_openai, median, now_ns,
                     package_root)

# Everything a host's first step does before the request is sent: import the package, load the
# plugin through its `workflow_connectors` entry point (pluggy), load the extension entry points,
# load and check the manifest, compile its validators, validate the connection and one chat input,
# and build the connection's HTTP session.
FIRST_STEP = f"""
import os
import azure_openai_connector
installed = os.environ.get("BENCH_INSTALLED_PACKAGES")
assert not installed or azure_openai_connector.__file__.startswith(installed), azure_openai_connector.__file__
from azure_openai_connector.host_manager import host_plugin_manager
from azure_openai_connector.host_hooks import default_runtime
from azure_openai_connector.manifest import load_manifest
host_plugin_manager()
runtime = default_runtime()
spec = load_manifest().action("create_chat_completion")
connection = runtime.connection({{"api_key": {API_KEY!r}, "organization": "bench"}})
values = spec.inputs.validated({{"messages": {json.dumps(CHAT_MESSAGES)}}})
runtime.client(connection)
assert values["model"] == spec.inputs.default("model")
"""
FLOOR = "import requests, yaml, pluggy"
OPENAI = "import openai"
CACHE_ENV = "AZURE_OPENAI_CONNECTOR_CACHE_DIR"


def _timed(code: str, env: Dict[str, str], cwd: Path) -> float:
    started = now_ns()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    return (now_ns() - started) / 1e6


# Not needed to build the wheel, and not to be copied for it (a stale build/ would end up in it).
BUILD_COPY_IGNORES = (".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
                      ".pytest_cache", "tests", "frontend", "tools", "docs", "bench")


def install_wheel(work: Path) -> Path:
    """This tree's wheel, built from a clean copy of it and installed without dependencies (the
    bench's environment has them) into a folder of its own under `work`: the package as a worker's
    image holds it."""
    source, dist, target = work / "source", work / "dist", work / "site-packages"
    shutil.copytree(package_root(), source, ignore=shutil.ignore_patterns(*BUILD_COPY_IGNORES))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
                   check=True, timeout=600, stdout=subprocess.DEVNULL)
    [wheel] = dist.glob("azure_openai_connector-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                    str(target), str(wheel)], check=True, timeout=600, stdout=subprocess.DEVNULL)
    return target


def run(rounds: int, warmup: int) -> Benchmark:
    bench = Benchmark("cold", "cold first step")
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache, \
            tempfile.TemporaryDirectory(prefix="bench-home-") as empty_home, \
            tempfile.TemporaryDirectory(prefix="bench-wheel-") as wheel_work:
        print("cold: building and installing the wheel", file=sys.stderr)
        installed = install_wheel(Path(wheel_work))
        elsewhere = Path(wheel_work)  # a working directory without the source tree in it
        # Every command reads its bytecode from one private cache, filled by the warm-up round: a
        # wheel install compiles bytecode, but a source checkout run with PYTHONDONTWRITEBYTECODE
        # would compile the package from source in every round while the floor's site-packages
        # modules were compiled at install time. Nothing is written into the source tree.
        env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        wheel_env = {**env, "PYTHONPATH": str(installed), "BENCH_INSTALLED_PACKAGES": str(installed)}
        fresh_worker = {name: value for name, value in wheel_env.items() if name != "XDG_CACHE_HOME"}
        fresh_worker.update({"HOME": empty_home, CACHE_ENV: ""})
        os.chmod(empty_home, 0o555)
        subjects = {
            "fresh": lambda: _timed(FIRST_STEP, fresh_worker, elsewhere),
            "ours": lambda: _timed(FIRST_STEP, wheel_env, elsewhere),
            "source": lambda: _timed(FIRST_STEP, env, package_root()),
            "floor": lambda: _timed(FLOOR, env, elsewhere),
        }
        if have_openai():
            subjects["openai"] = lambda: _timed(OPENAI, env, elsewhere)
        try:
            times: Dict[str, List[float]] = alternate(subjects, rounds, max(warmup, 1))
        finally:
            os.chmod(empty_home, 0o755)
    fresh = bench.add("first step, fresh worker (installed wheel): no cache directory, read-only home", "ms",
                      times["fresh"], note=f"{CACHE_ENV}=")
    bench.add("first step, installed wheel, default cache directory", "ms", times["ours"])
    bench.add("first step, source checkout (editable install: the YAML parsed)", "ms", times["source"])
    floor = bench.add(f"floor: python -c {FLOOR!r}", "ms", times["floor"])
    # The targets are held to the median of each round's own ratio: a round's commands run back to
    # back, so a slow moment of a shared machine slows both sides of its ratio, where the ratio of
    # two medians can pair a fast round of one command with a slow round of the other. Both are shown.
    paired_floor = bench.add("fresh worker / floor, each round", "x", _per_round(times["fresh"], times["floor"]))
    bench.ratio("fresh worker / floor (median of each round's ratio)", paired_floor.median, 1.0, 1.1)
    bench.ratio("fresh worker / floor (ratio of the medians)", fresh.median, floor.median)
    if "openai" in times:
        openai = bench.add(f"python -c {OPENAI!r}", "ms", times["openai"])
        paired_openai = bench.add("fresh worker / import openai, each round", "x",
                                  _per_round(times["fresh"], times["openai"]))
        bench.ratio("fresh worker / import openai (median of each round's ratio)", paired_openai.median, 1.0, 0.30)
        bench.ratio("fresh worker / import openai (ratio of the medians)", fresh.median, openai.median)
    else:
        bench.notes.append(OPENAI_MISSING)
    # The same work as the fresh worker (an installed wheel never consults the cache): the gap
    # between the two rows is this run's noise.
    bench.ratio("default cache / floor (median of each round's ratio)",
                median(_per_round(times["ours"], times["floor"])), 1.0)
    bench.ratio("source checkout / floor (median of each round's ratio)",
                median(_per_round(times["source"], times["floor"])), 1.0)
    bench.notes.append("whole process times (spawn to exit) of fresh interpreters, alternated each round, "
                       "bytecode cached as a wheel install has it (see bench/cold.py); the fresh worker and "
                       "the default cache directory do the same work from the wheel, so their gap is the noise")
    return bench


def _per_round(numerators: List[float], denominators: List[float]) -> List[float]:
    return [top / bottom for top, bottom in zip(numerators, denominators)]
