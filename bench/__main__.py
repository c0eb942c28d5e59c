"""``python -m bench``: run every benchmark, print one table of medians and ratios, optionally
write the same figures as JSON (``--json FILE``). ``--quick`` uses tiny sizes (the smoke test)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import cold, fanout, percall, quota, scale
from .bare_server import BareServerProcess
from .common import Benchmark, machine, render_table
from .server import EmulatorProcess

BENCHMARKS = ("cold", "per_call", "per_call_emulator", "validation", "fanout_16", "fanout_50", "scale", "summarize",
              "quota_tpm", "quota_rpm")

FULL: Dict[str, Dict[str, Any]] = {
    "cold": dict(rounds=31, warmup=2),
    "per_call": dict(rounds=7, warmup=1, calls=200),
    "per_call_emulator": dict(rounds=5, warmup=1, calls=200),
    "validation": dict(rounds=9, warmup=1, iterations=20000),
    "fanout_16": dict(prompt_count=100, latency=0.1, concurrency=16, rounds=7, warmup=1, target=1.10),
    "fanout_50": dict(prompt_count=100, latency=0.1, concurrency=50, rounds=7, warmup=1, target=1.4),
    "scale": dict(prompt_count=10000, latency=0.02, concurrency=64, batch=500, rounds=3, warmup=0),
    "summarize": dict(size=1_000_000, latency=0.05, rounds=5, warmup=1),
    "quota_tpm": dict(prompt_count=2000, rpm=600, tpm=30000, time_scale=20, latency=0.1, concurrency=32,
                      rounds=3, warmup=0),
    "quota_rpm": dict(prompt_count=2000, rpm=600, tpm=10_000_000, time_scale=20, latency=0.1, concurrency=32,
                      rounds=3, warmup=0),
}
QUICK: Dict[str, Dict[str, Any]] = {
    "cold": dict(rounds=1, warmup=0),
    "per_call": dict(rounds=1, warmup=0, calls=10),
    "per_call_emulator": dict(rounds=1, warmup=0, calls=10),
    "validation": dict(rounds=1, warmup=0, iterations=200),
    "fanout_16": dict(prompt_count=8, latency=0.01, concurrency=16, rounds=1, warmup=0, target=1.10),
    "fanout_50": dict(prompt_count=8, latency=0.01, concurrency=50, rounds=1, warmup=0, target=1.4),
    "scale": dict(prompt_count=100, latency=0.005, concurrency=8, batch=50, rounds=1, warmup=0),
    "summarize": dict(size=60_000, latency=0.005, rounds=1, warmup=0),
    "quota_tpm": dict(prompt_count=60, rpm=600, tpm=30000, time_scale=20, latency=0.01, concurrency=8,
                      rounds=1, warmup=0),
    "quota_rpm": dict(prompt_count=60, rpm=600, tpm=10_000_000, time_scale=20, latency=0.01, concurrency=8,
                      rounds=1, warmup=0),
}


def _on_emulator(server: EmulatorProcess, **sizes: Any) -> Benchmark:
    server.set_latency(0.0)
    return percall.run(server, key="per_call_emulator", targets=False,
                       title="per-call chat step (emulator)", **sizes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write every figure to FILE as JSON")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one round (a smoke test, not a measurement)")
    parser.add_argument("--rounds", type=int, help="measured rounds for every benchmark (after warm-up)")
    parser.add_argument("--only", metavar="KEYS",
                        help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--package-root", metavar="DIR", type=Path,
                        help="measure the connector of another source tree (a `git worktree` of an older "
                             "commit, say) with this harness: before/after comparisons")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    options = build_parser().parse_args(argv)
    sizes = {key: dict(value) for key, value in (QUICK if options.quick else FULL).items()}
    if options.rounds:
        for value in sizes.values():
            value["rounds"] = options.rounds
    selected = BENCHMARKS if not options.only else tuple(key.strip() for key in options.only.split(","))
    unknown = set(selected) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    if options.package_root:
        root = options.package_root.resolve()
        if not (root / "azure_openai_connector" / "__init__.py").is_file():
            print(f"no azure_openai_connector package in {root}", file=sys.stderr)
            return 2
        os.environ["BENCH_PACKAGE_ROOT"] = str(root)
        sys.path.insert(0, str(root))
    import azure_openai_connector

    if any(os.environ.get(name) for name in ("http_proxy", "https_proxy", "all_proxy",
                                               "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")):
        # Every client here talks to loopback servers; a proxy from the environment must not
        # swallow those requests (the default Session still reads the variables on every call).
        for name in ("no_proxy", "NO_PROXY"):
            os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"]))

    about = machine()
    about["connector"] = str(Path(azure_openai_connector.__file__).parent)
    print(f"# {about['cpu']}, {about['cpus']} CPUs, {about['memory']}, {about['system']}, {about['python']}",
          file=sys.stderr)
    print(f"# measuring the connector in {about['connector']}", file=sys.stderr)
    results: List[Benchmark] = []
    started = time.perf_counter()
    with EmulatorProcess() as server, BareServerProcess() as bare_server:
        runners: Dict[str, Callable[[], Benchmark]] = {
            "cold": lambda: cold.run(**sizes["cold"]),
            "per_call": lambda: percall.run(bare_server, key="per_call", targets=True,
                                            title="per-call chat step (bare loopback server)",
                                            **sizes["per_call"]),
            "per_call_emulator": lambda: _on_emulator(server, **sizes["per_call_emulator"]),
            "validation": lambda: percall.run_validation(**sizes["validation"]),
            "fanout_16": lambda: fanout.run(server, **sizes["fanout_16"]),
            "fanout_50": lambda: fanout.run(server, **sizes["fanout_50"]),
            "scale": lambda: scale.run(server, **sizes["scale"]),
            "summarize": lambda: fanout.run_summarize(server, **sizes["summarize"]),
            "quota_tpm": lambda: quota.run(server, key="quota_tpm", **sizes["quota_tpm"]),
            "quota_rpm": lambda: quota.run(server, key="quota_rpm", **sizes["quota_rpm"]),
        }
        for key in selected:
            print(f"# running {key} ...", file=sys.stderr, flush=True)
            results.append(runners[key]())
    table = render_table(results)
    if options.quick:
        table = "--quick: tiny sizes and one round; these figures are not measurements.\n\n" + table
    print(table)
    print(f"\n# {time.perf_counter() - started:.0f} s in all", file=sys.stderr)
    if options.json:
        options.json.write_text(json.dumps({
            "machine": about, "quick": options.quick, "sizes": {key: sizes[key] for key in selected},
            "benchmarks": {bench.key: bench.to_dict() for bench in results}, "table": table,
        }, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
