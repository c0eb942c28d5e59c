"""Fan-out through `create_multiple_chat_completions` against the emulator with latency, and
`summarize_text` on a long text, each against its ideal (waves of `concurrency` requests, each
wave taking exactly the latency) and, for fan-out, openai's `AsyncAzureOpenAI` with a semaphore.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Dict, List

from .common import API_KEY, AZURE_API_VERSION, DEPLOYMENT, OPENAI_MISSING, Benchmark, alternate, have_openai, now_ns
from .server import EmulatorProcess


def prompts(count: int, offset: int = 0) -> List[str]:
    return [f"Write one sentence about the number {offset + index}." for index in range(count)]


def run(server: EmulatorProcess, *, prompt_count: int, latency: float, concurrency: int,
        rounds: int, warmup: int, target: float) -> Benchmark:
    from azure_openai_connector import run_action

    bench = Benchmark(f"fanout_{concurrency}",
                      f"fan-out {prompt_count} prompts, {latency * 1000:.0f} ms, concurrency {concurrency}")
    server.set_latency(latency)
    connection = server.connection()
    texts = prompts(prompt_count)
    ideal = math.ceil(prompt_count / concurrency) * latency
    peaks: Dict[str, List[int]] = {"ours": [], "sdk": []}

    def ours() -> float:
        server.reset()
        started = now_ns()
        result = run_action("create_multiple_chat_completions", connection,
                            {"prompts": texts, "max_concurrency": concurrency})
        elapsed = (now_ns() - started) / 1e9
        assert result["totals"]["succeeded"] == prompt_count, result["totals"]
        peaks["ours"].append(server.stats()["peak_concurrency"])
        return elapsed

    if not have_openai():
        results = alternate({"ours": ours}, rounds, warmup)
        measured = bench.add("run_action create_multiple_chat_completions", "s", results["ours"],
                             peak_concurrency=peaks["ours"][warmup:])
        bench.add(f"ideal: ceil({prompt_count}/{concurrency}) × {latency * 1000:.0f} ms", "s", [ideal])
        bench.ratio("ours / ideal", measured.median, ideal, target)
        bench.notes.append(OPENAI_MISSING)
        return bench

    from openai import AsyncAzureOpenAI

    loop = asyncio.new_event_loop()
    sdk = AsyncAzureOpenAI(api_key=API_KEY, azure_endpoint=server.url, api_version=AZURE_API_VERSION)

    async def sdk_batch() -> List[Any]:
        gate = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> Any:
            async with gate:
                return await sdk.chat.completions.create(
                    model=DEPLOYMENT, messages=[{"role": "user", "content": prompt}])

        return await asyncio.gather(*(one(prompt) for prompt in texts))

    def official() -> float:
        server.reset()
        started = now_ns()
        answers = loop.run_until_complete(sdk_batch())
        elapsed = (now_ns() - started) / 1e9
        assert len(answers) == prompt_count
        peaks["sdk"].append(server.stats()["peak_concurrency"])
        return elapsed

    try:
        results = alternate({"ours": ours, "sdk": official}, rounds, warmup)
    finally:
        loop.run_until_complete(sdk.close())
        loop.close()
    measured = bench.add("run_action create_multiple_chat_completions", "s", results["ours"],
                         peak_concurrency=peaks["ours"][warmup:])
    theirs = bench.add(f"openai AsyncAzureOpenAI, semaphore {concurrency}", "s", results["sdk"],
                       peak_concurrency=peaks["sdk"][warmup:])
    bench.add(f"ideal: ceil({prompt_count}/{concurrency}) × {latency * 1000:.0f} ms", "s", [ideal])
    bench.ratio("ours / ideal", measured.median, ideal, target)
    bench.ratio("openai SDK / ideal", theirs.median, ideal)
    bench.notes.append(f"peak concurrency seen by the emulator: ours {max(peaks['ours'])}, "
                       f"SDK {max(peaks['sdk'])}")
    return bench


def long_text(size: int) -> str:
    """About `size` characters of prose in paragraphs of a few sentences (deterministic)."""
    sentences = [f"Sentence {n} of the report notes that item {n % 97} changed by {n % 13} percent."
                 for n in range(size // 60 + 1)]
    paragraphs = [" ".join(sentences[i:i + 6]) for i in range(0, len(sentences), 6)]
    return "\n\n".join(paragraphs)[:size]


def run_summarize(server: EmulatorProcess, *, size: int, latency: float, rounds: int, warmup: int) -> Benchmark:
    from azure_openai_connector import run_action
    from azure_openai_connector.manifest import load_manifest

    defaults = load_manifest().action("summarize_text").inputs
    concurrency = defaults.default("max_concurrency")
    chunk_size = defaults.default("chunk_size")
    bench = Benchmark("summarize", f"summarize {size / 1e6:g} MB, {latency * 1000:.0f} ms")
    server.set_latency(latency)
    connection = server.connection()
    text = long_text(size)
    shapes: List[Dict[str, int]] = []

    def ours() -> float:
        started = now_ns()
        result = run_action("summarize_text", connection, {"text": text})
        elapsed = (now_ns() - started) / 1e9
        shapes.append({"chunks": result["chunks"], "requests": result["usage"]["requests"]})
        return elapsed

    results = alternate({"ours": ours}, rounds, warmup)
    chunks, requests_sent = shapes[-1]["chunks"], shapes[-1]["requests"]
    # Map wave(s), any reduce requests packed into waves of the same width, one final combine.
    reduce_requests = max(0, requests_sent - chunks - 1)
    waves = math.ceil(chunks / concurrency) + math.ceil(reduce_requests / concurrency) + (1 if chunks > 1 else 0)
    ideal = waves * latency
    measured = bench.add("run_action summarize_text (defaults)", "s", results["ours"],
                         chunks=chunks, requests=requests_sent)
    bench.add(f"ideal: {waves} waves × {latency * 1000:.0f} ms ({chunks} chunks of ≤ {chunk_size} "
              f"characters, concurrency {concurrency}, {requests_sent} requests)", "s", [ideal])
    bench.ratio("ours / ideal", measured.median, ideal)
    return bench
