"""Fan-outs at a deployment's quota: the emulator in quota mode enforces RPM and TPM as Azure does,
and each client runs the same prompts: ours (the shared quota pacer), today's AIMD pacer alone, and
openai's `AsyncAzureOpenAI` with a semaphore (what a user writes today, with its own retries).

The quota is sped up (`time_scale`): budgets are spent and refilled that many times faster, with
windows that much shorter, and the emulator's headers report the sped-up minute, so every client
sees an ordinary, bigger quota. The quota ideal is the time the binding budget itself imposes,
prompts / (RPM / 60) or estimated tokens / (TPM / 60) at the sped-up rate; a client may beat it
by a little, since the quota's window starts full (10 s of budget, before the speed-up).
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from .common import API_KEY, AZURE_API_VERSION, OPENAI_MISSING, Benchmark, alternate, have_openai, now_ns
from .fanout import prompts
from .server import EmulatorProcess

MAX_TOKENS = 100
STEP_SIZE = 500  # the manifest's most prompts per step: a bigger fan-out is consecutive steps


def _tokens(texts: List[str]) -> int:
    from azure_openai_connector.emulator.quota import estimated_tokens

    return sum(estimated_tokens({"messages": [{"role": "user", "content": text}],
                                 "max_completion_tokens": MAX_TOKENS}) for text in texts)


def run(server: EmulatorProcess, *, key: str, prompt_count: int, rpm: int, tpm: int, time_scale: float,
        latency: float, concurrency: int, rounds: int, warmup: int) -> Benchmark:
    from azure_openai_connector import run_action
    from azure_openai_connector.actions.batch import AdaptivePacer
    from azure_openai_connector.runtime import Runtime

    texts = prompts(prompt_count)
    deployment = f"bench-{key}"
    token_total = _tokens(texts)
    request_seconds = prompt_count / (rpm * time_scale / 60)
    token_seconds = token_total / (tpm * time_scale / 60)
    binding = "TPM" if token_seconds > request_seconds else "RPM"
    ideal = max(request_seconds, token_seconds)
    bench = Benchmark(key, f"quota: {prompt_count} prompts, RPM {rpm}, TPM {tpm} ({binding} binds), "
                           f"sped up {time_scale:g}x")
    server.set_latency(latency)
    server.set_quota(rpm, tpm, time_scale)
    connection = {"api_key": API_KEY, "organization": "bench", "endpoint": server.url}
    inputs = {"model": deployment, "max_tokens": MAX_TOKENS, "max_concurrency": concurrency}
    aimd_runtime = Runtime(pacer_factory=lambda limit: AdaptivePacer(limit))
    refused: Dict[str, List[int]] = {"ours": [], "aimd": [], "sdk": []}
    failed: Dict[str, List[int]] = {"ours": [], "aimd": [], "sdk": []}

    def steps(run_step: Any, name: str) -> float:
        server.reset()
        started = now_ns()
        failures = 0
        for start in range(0, prompt_count, STEP_SIZE):
            result = run_step(dict(inputs, prompts=texts[start:start + STEP_SIZE]))
            failures += result["totals"]["failed"]
        elapsed = (now_ns() - started) / 1e9
        refused[name].append(server.stats()["refused"])
        failed[name].append(failures)
        return elapsed

    subjects = {
        "ours": lambda: steps(lambda step: run_action("create_multiple_chat_completions", connection, step), "ours"),
        "aimd": lambda: steps(lambda step: aimd_runtime.run("create_multiple_chat_completions", connection, step),
                              "aimd"),
    }
    loop = sdk = None
    if have_openai():
        from openai import AsyncAzureOpenAI, RateLimitError

        loop = asyncio.new_event_loop()
        sdk = AsyncAzureOpenAI(api_key=API_KEY, azure_endpoint=server.url, api_version=AZURE_API_VERSION)

        async def sdk_batch() -> int:
            gate = asyncio.Semaphore(concurrency)

            async def one(prompt: str) -> bool:
                async with gate:
                    try:
                        await sdk.chat.completions.create(  # type: ignore[union-attr]
                            model=deployment, max_completion_tokens=MAX_TOKENS,
                            messages=[{"role": "user", "content": prompt}])
                        return True
                    except RateLimitError:  # still limited after the SDK's own retries
                        return False

            return sum(not ok for ok in await asyncio.gather(*(one(prompt) for prompt in texts)))

        def official() -> float:
            server.reset()
            started = now_ns()
            failures = loop.run_until_complete(sdk_batch())  # type: ignore[union-attr]
            elapsed = (now_ns() - started) / 1e9
            refused["sdk"].append(server.stats()["refused"])
            failed["sdk"].append(failures)
            return elapsed

        subjects["sdk"] = official
    else:
        bench.notes.append(OPENAI_MISSING)
    try:
        results = alternate(subjects, rounds, warmup)
    finally:
        server.quota_off()
        aimd_runtime.close()
        if loop is not None:
            loop.run_until_complete(sdk.close())  # type: ignore[union-attr]
            loop.close()

    labels = {"ours": "run_action, the shared quota pacer", "aimd": "run_action, today's AIMD pacer per step",
              "sdk": f"openai AsyncAzureOpenAI, semaphore {concurrency}"}
    for name in subjects:
        measured = bench.add(labels[name], "s", results[name])
        answered_429 = refused[name][warmup:]
        bench.add(f"{labels[name]}: requests answered 429", "count", answered_429)
        bench.add(f"{labels[name]}: prompts failed", "count", failed[name][warmup:])
        share = sorted(answered_429)[len(answered_429) // 2] / prompt_count
        if name == "ours":
            bench.ratio("ours / quota ideal", measured.median, ideal, 1.10)
            bench.ratio("ours: 429s per prompt", share, 1.0, 0.01)
        else:
            bench.ratio(f"{name} / quota ideal", measured.median, ideal)
            bench.ratio(f"{name}: 429s per prompt", share, 1.0)
    bench.add(f"quota ideal: {prompt_count} requests at {rpm * time_scale / 60:g}/s, {token_total} estimated "
              f"tokens at {tpm * time_scale / 60:g}/s", "s", [ideal])
    bench.notes.append(f"RPM {rpm} and TPM {tpm} sped up {time_scale:g}x (a quota minute lasts "
                       f"{60 / time_scale:g} s, windows {10 / time_scale:g} s); {latency * 1000:.0f} ms latency, "
                       f"concurrency {concurrency}, max_tokens {MAX_TOKENS}; steps of {STEP_SIZE} prompts")
    return bench
