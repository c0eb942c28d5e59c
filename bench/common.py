"""Timing helpers, results and the table: medians of repeated rounds, ratios with their targets."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

API_KEY = "bench-key"
# Four messages, as in the validation figure (jsonschema ~120 us, fastjsonschema ~6 us).
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Who won the world series in 2020?"},
    {"role": "assistant", "content": "The Los Angeles Dodgers."},
    {"role": "user", "content": "Where was it played?"},
]
AZURE_API_VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o-mini"


OPENAI_MISSING = "openai is not installed, so its rows are left out: pip install -e '.[bench]'"


def have_openai() -> bool:
    """Whether the benchmark extra is installed (the SDK rows need it; the rest do not)."""
    import importlib.util

    return importlib.util.find_spec("openai") is not None


BENCH_PARENT = Path(__file__).resolve().parent.parent


def package_root() -> Path:
    """The source tree whose connector is measured: this checkout, or `--package-root`."""
    return Path(os.environ.get("BENCH_PACKAGE_ROOT") or BENCH_PARENT)


def subprocess_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for child processes, which run with `package_root()` as their working
    directory (so its connector is imported first) and still find this `bench` package."""
    env = dict(os.environ if base is None else base)
    if package_root() != BENCH_PARENT:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_PARENT), env.get("PYTHONPATH")]))
    return env


def now_ns() -> int:
    return time.perf_counter_ns()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Measurement:
    subject: str
    unit: str
    samples: List[float]
    note: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return median(self.samples)


@dataclass
class Ratio:
    name: str
    value: float
    target: Optional[float] = None  # the value must be <= target; None: reported only

    @property
    def met(self) -> Optional[bool]:
        return None if self.target is None else self.value <= self.target


@dataclass
class Benchmark:
    key: str
    title: str
    measurements: List[Measurement] = field(default_factory=list)
    ratios: List[Ratio] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def add(self, subject: str, unit: str, samples: Sequence[float], note: str = "", **extra: Any) -> Measurement:
        measurement = Measurement(subject, unit, list(samples), note, dict(extra))
        self.measurements.append(measurement)
        return measurement

    def get(self, subject: str) -> Measurement:
        return next(m for m in self.measurements if m.subject == subject)

    def ratio(self, name: str, numerator: float, denominator: float, target: Optional[float] = None) -> Ratio:
        ratio = Ratio(name, numerator / denominator if denominator else float("inf"), target)
        self.ratios.append(ratio)
        return ratio

    def to_dict(self) -> Dict[str, Any]:
        return {
            "title": self.title,
            "measurements": [dict(asdict(m), median=m.median) for m in self.measurements],
            "ratios": [dict(asdict(r), met=r.met) for r in self.ratios],
            "notes": self.notes,
        }


def alternate(subjects: Dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> Dict[str, List[Any]]:
    """Run every subject once per round, rotating the order each round so that no subject always
    runs first or last; warm-up rounds are run the same way and dropped."""
    names = list(subjects)
    results: Dict[str, List[Any]] = {name: [] for name in names}
    for round_number in range(warmup + rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            value = subjects[name]()
            if round_number >= warmup:
                results[name].append(value)
    return results


def format_value(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "n/a"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "us":
        return f"{value:.1f} µs"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "KB":
        return f"{value:.2f} KB"
    if unit == "count":
        return f"{value:g}"
    if unit == "x":
        return f"{value:.3f}x"
    return f"{value:g} {unit}"


WIDE_SPREAD = 0.20


def spread_share(measurement: Measurement) -> float:
    """(max - min) / median of the samples (0 for one sample or a zero median)."""
    samples = measurement.samples
    middle = measurement.median
    if len(samples) < 2 or not middle:
        return 0.0
    return (max(samples) - min(samples)) / abs(middle)


def wide_spread(measurement: Measurement) -> bool:
    """Whether the samples spread wider than 20 % of their median (the table says so)."""
    return spread_share(measurement) > WIDE_SPREAD


def render_table(benchmarks: Sequence[Benchmark]) -> str:
    """Two Markdown tables: every measured median, then every ratio with its target."""
    lines = ["| benchmark | measured | median | min–max | rounds |", "| --- | --- | --- | --- | --- |"]
    for bench in benchmarks:
        for m in bench.measurements:
            spread = (f"{format_value(min(m.samples), m.unit)}–{format_value(max(m.samples), m.unit)}"
                      if len(m.samples) > 1 else "")
            if wide_spread(m):
                spread += f" (spread {spread_share(m):.0%}, wider than 20 %)"
            subject = m.subject + (f" ({m.note})" if m.note else "")
            lines.append(f"| {bench.title} | {subject} | {format_value(m.median, m.unit)} | {spread} "
                         f"| {len(m.samples)} |")
    lines += ["", "| benchmark | ratio | value | target | met |", "| --- | --- | --- | --- | --- |"]
    for bench in benchmarks:
        for r in bench.ratios:
            target = "reported" if r.target is None else f"≤ {r.target:g}"
            met = {None: "", True: "yes", False: "**no**"}[r.met]
            lines.append(f"| {bench.title} | {r.name} | {r.value:.2f} | {target} | {met} |")
    notes = [f"- {bench.title}: {note}" for bench in benchmarks for note in bench.notes]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def machine() -> Dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            memory = f"{int(meminfo.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("requests", "urllib3", "jsonschema", "PyYAML", "pluggy", "openai", "httpx"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "packages": versions,
    }


class ServerProcess:
    """A loopback server in its own process (so it never shares the bench's GIL): started with
    `argv`, announces `{"url": ...}` on its first stdout line, stops when its stdin closes."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self._process: Optional[subprocess.Popen] = None
        self.url = ""

    def __enter__(self) -> "ServerProcess":
        self._process = subprocess.Popen([sys.executable, *self.argv], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, bufsize=1)
        hello = self._process.stdout.readline()  # type: ignore[union-attr]
        if not hello:
            raise RuntimeError(f"the server process {' '.join(self.argv)} did not start")
        self.url = json.loads(hello)["url"]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
