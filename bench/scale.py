"""Scale: many prompts at a small latency, the connector against a bare `requests.Session`
thread pool doing the same work, each round in a fresh process (so peak RSS is that run's own).

The manifest caps one step at 500 prompts and 64 concurrent requests, so the connector runs the
prompts as consecutive steps of 500 with `max_concurrency` 64, and the bare pool posts the same
bodies in the same consecutive batches of 500 through one pool of 64 threads over one Session
whose pool holds 64 connections (the default 10 would discard most of them after each use).

Both keep every result until the end, as a host does, so the peak RSS growth divided by the
prompts is the memory each kept prompt costs.

``python -m bench.scale --mode ours|bare --url URL ...`` is the worker; `run()` drives it.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .common import API_KEY, Benchmark, alternate, now_ns, package_root, subprocess_env
from .fanout import prompts
from .server import EmulatorProcess


def _status_kb(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS count (VmHWM) from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kb() -> int:
    peak = _status_kb("VmHWM")
    if peak is not None:
        return peak
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage // 1024 if sys.platform == "darwin" else usage


def worker(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--mode", choices=("ours", "bare"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--prompts", type=int, required=True)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    options = parser.parse_args(argv)
    texts = prompts(options.prompts)
    batches = [texts[start:start + options.batch] for start in range(0, len(texts), options.batch)]
    warm = prompts(options.concurrency * 2, offset=10**6)

    if options.mode == "ours":
        from azure_openai_connector import run_action

        connection = {"api_key": API_KEY, "organization": "bench", "endpoint": options.url,
                      "api_version": "2024-10-21"}  # the floor's route

        def run_batch(batch: List[str]) -> Any:
            result = run_action("create_multiple_chat_completions", connection,
                                {"prompts": batch, "max_concurrency": options.concurrency})
            return result["results"] if result["totals"]["succeeded"] == len(batch) else None
        closing: Any = None
    else:
        from concurrent.futures import ThreadPoolExecutor

        import requests
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=options.concurrency))
        url = f"{options.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
        pool = ThreadPoolExecutor(options.concurrency)

        def post(prompt: str) -> Any:
            response = session.post(url, json={"messages": [{"role": "user", "content": prompt}]},
                                    headers={"api-key": API_KEY})
            response.raise_for_status()
            return response.json()

        def run_batch(batch: List[str]) -> Any:
            return list(pool.map(post, batch))
        closing = pool

    assert len(run_batch(warm) or ()) == len(warm)  # imports done, connections open
    rss_before = _status_kb("VmRSS") or _peak_rss_kb()
    peak_reset = _reset_peak_rss()
    cpu_started = time.process_time()
    started = now_ns()
    # The results are kept, as a host keeps them until the workflow's next step has read them.
    kept = [run_batch(batch) for batch in batches]
    elapsed = (now_ns() - started) / 1e9
    succeeded = sum(len(results or ()) for results in kept)
    cpu = time.process_time() - cpu_started
    peak = _peak_rss_kb()
    if closing is not None:
        closing.shutdown()
    connector = sys.modules.get("azure_openai_connector")
    print(json.dumps({"elapsed": elapsed, "cpu": cpu, "succeeded": succeeded, "rss_before_kb": rss_before,
                      "peak_rss_kb": peak, "peak_reset": peak_reset,
                      "connector": connector and str(Path(connector.__file__).parent)}))
    return 0 if succeeded == len(texts) else 1


def run(server: EmulatorProcess, *, prompt_count: int, latency: float, concurrency: int, batch: int,
        rounds: int, warmup: int) -> Benchmark:
    import azure_openai_connector

    bench = Benchmark("scale", f"scale {prompt_count} prompts, {latency * 1000:.0f} ms, concurrency {concurrency}")
    server.set_latency(latency)
    server_cpu: Dict[str, List[float]] = {"ours": [], "bare": []}

    def one(mode: str) -> Dict[str, Any]:
        server.reset()  # the emulator forgets the requests it recorded: its memory stays flat
        cpu_before = server.stats()["cpu_seconds"]
        done = subprocess.run(
            [sys.executable, "-m", "bench.scale", "--mode", mode, "--url", server.url, "--prompts",
             str(prompt_count), "--batch", str(batch), "--concurrency", str(concurrency)],
            cwd=package_root(), env=subprocess_env(), check=True, capture_output=True, text=True)
        server_cpu[mode].append(server.stats()["cpu_seconds"] - cpu_before)
        report = json.loads(done.stdout)
        if mode == "ours" and report["connector"] != str(Path(azure_openai_connector.__file__).parent):
            raise RuntimeError(f"the scale worker measured {report['connector']}, not the selected connector")
        return report

    results = alternate({"ours": lambda: one("ours"), "bare": lambda: one("bare")}, rounds, warmup)
    steps = math.ceil(prompt_count / batch)
    ours = bench.add(f"run_action create_multiple_chat_completions, {steps} consecutive steps of {batch}",
                     "s", [r["elapsed"] for r in results["ours"]])
    bare = bench.add(f"bare requests.Session + {concurrency}-thread pool, same {steps} batches", "s",
                     [r["elapsed"] for r in results["bare"]])
    growth = bench.add("ours: peak RSS growth during the run", "MB",
                       [(r["peak_rss_kb"] - r["rss_before_kb"]) / 1024 for r in results["ours"]])
    bench.add("bare: peak RSS growth during the run", "MB",
              [(r["peak_rss_kb"] - r["rss_before_kb"]) / 1024 for r in results["bare"]])
    bench.add("ours: client CPU", "s", [r["cpu"] for r in results["ours"]])
    bench.add("bare: client CPU", "s", [r["cpu"] for r in results["bare"]])
    bench.add("emulator CPU while serving ours", "s", server_cpu["ours"][warmup:])
    bench.add("emulator CPU while serving bare", "s", server_cpu["bare"][warmup:])
    bench.add("ours: peak RSS growth per kept prompt", "KB",
              [(r["peak_rss_kb"] - r["rss_before_kb"]) / prompt_count for r in results["ours"]])
    bench.add("bare: peak RSS growth per kept prompt", "KB",
              [(r["peak_rss_kb"] - r["rss_before_kb"]) / prompt_count for r in results["bare"]])
    # As the batches actually run: each step of `batch` prompts in waves of `concurrency`.
    sizes = [min(batch, prompt_count - start) for start in range(0, prompt_count, batch)]
    waves = sum(math.ceil(size / concurrency) for size in sizes)
    ideal = waves * latency
    bench.add(f"ideal: {waves} waves ({steps} steps of ≤ {batch} in waves of {concurrency}) × "
              f"{latency * 1000:.0f} ms", "s", [ideal])
    bench.ratio("ours / bare pool", ours.median, bare.median, 1.1)
    bench.ratio("ours peak RSS growth (MB, absolute)", growth.median, 1.0, 100.0)
    bench.ratio("bare pool / ideal", bare.median, ideal)
    return bench


if __name__ == "__main__":
    raise SystemExit(worker())
