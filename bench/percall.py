"""Per-call cost of one chat step (zero latency) and the cost of input validation.

Per call: `run_action` (validation included) against a bare default `requests.Session().post`
of the same body and openai's `AzureOpenAI` client, all against the same server process, in
alternating rounds. Wall time is the median of every individual call; client CPU is the median
of the rounds' CPU per call (the server runs in another process, so this is the client's own).
It runs twice: against the bare loopback server (the connector's cost, held to the targets) and
against the emulator (whose own work per request is a large, shared part of every call).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Tuple

from .common import (API_KEY, AZURE_API_VERSION, CHAT_MESSAGES, DEPLOYMENT, OPENAI_MISSING, Benchmark, alternate,
                     have_openai, median, now_ns)


def _round(call: Callable[[], Any], calls: int) -> Tuple[List[float], float]:
    durations = []
    cpu_started = time.process_time_ns()
    for _ in range(calls):
        started = now_ns()
        call()
        durations.append((now_ns() - started) / 1e3)
    return durations, (time.process_time_ns() - cpu_started) / 1e3 / calls


def run(server: Any, *, key: str, title: str, rounds: int, warmup: int, calls: int,
        targets: bool) -> Benchmark:
    """`server` has `.url` (the bare server or the emulator process); `targets`: whether this
    run's ratios are held to the issue's targets or only reported."""
    import requests

    from azure_openai_connector import run_action

    bench = Benchmark(key, title)
    connection = {"api_key": API_KEY, "organization": "bench", "endpoint": server.url,
                  "api_version": AZURE_API_VERSION}  # the same route as the SDK and the floor
    url = f"{server.url}/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={AZURE_API_VERSION}"
    body = {"messages": CHAT_MESSAGES}
    session = requests.Session()

    def bare() -> Any:
        response = session.post(url, json=body, headers={"api-key": API_KEY})
        response.raise_for_status()
        return response.json()

    def ours() -> Any:
        return run_action("create_chat_completion", connection, {"messages": CHAT_MESSAGES})

    calls_by_name: Dict[str, Callable[[], Any]] = {"ours": ours, "bare": bare}
    sdk = None
    if have_openai():
        from openai import AzureOpenAI

        sdk = AzureOpenAI(api_key=API_KEY, azure_endpoint=server.url, api_version=AZURE_API_VERSION)
        calls_by_name["sdk"] = lambda: sdk.chat.completions.create(model=DEPLOYMENT, messages=CHAT_MESSAGES)
    else:
        bench.notes.append(OPENAI_MISSING)
    for call in calls_by_name.values():
        call()  # fails loudly before any timing if a client is misconfigured
    results = alternate({name: (lambda call=call: _round(call, calls)) for name, call in calls_by_name.items()},
                        rounds, warmup)
    figures: Dict[str, Tuple[float, float]] = {}
    labels = {"ours": "run_action (validation included)", "bare": "bare default requests.Session().post",
              "sdk": "openai AzureOpenAI chat.completions.create"}
    for name in calls_by_name:
        wall = [d for durations, _ in results[name] for d in durations]
        cpu = [per_call for _, per_call in results[name]]
        bench.add(f"{labels[name]}: wall", "us", wall)
        bench.add(f"{labels[name]}: client CPU", "us", cpu)
        figures[name] = (median(wall), median(cpu))
    bench.ratio("ours / bare Session (wall)", figures["ours"][0], figures["bare"][0], 1.0 if targets else None)
    if "sdk" in figures:
        bench.ratio("ours / openai SDK (wall)", figures["ours"][0], figures["sdk"][0], 0.4 if targets else None)
    bench.ratio("ours / bare Session (client CPU)", figures["ours"][1], figures["bare"][1])
    if "sdk" in figures:
        bench.ratio("ours / openai SDK (client CPU)", figures["ours"][1], figures["sdk"][1])
        bench.ratio("openai SDK / bare Session (wall)", figures["sdk"][0], figures["bare"][0])
        sdk.close()  # type: ignore[union-attr]
    session.close()
    return bench


# Invalid on purpose in three places: every one must be reported with its path.
INVALID_INPUTS = {
    "messages": [{"role": "robot", "content": "hi"}, {"role": "user"}],
    "temperature": 3,
}


def run_validation(rounds: int, warmup: int, iterations: int) -> Benchmark:
    from jsonschema import Draft7Validator

    from azure_openai_connector.errors import InputValidationError
    from azure_openai_connector.manifest import load_manifest

    bench = Benchmark("validation", "input validation")
    form = load_manifest().action("create_chat_completion").inputs
    inputs = {"messages": CHAT_MESSAGES}
    completed = form.complete(inputs)
    reference = Draft7Validator(form.schema)  # compiled once, as ours is
    assert reference.is_valid(completed) and form.validator.is_valid(completed)

    def invalid() -> List[Dict[str, str]]:
        try:
            form.validated(INVALID_INPUTS)
        except InputValidationError as error:
            return error.errors
        raise AssertionError("invalid inputs were accepted")

    problems = invalid()
    paths = sorted(problem["path"] for problem in problems)
    expected = ["messages/0/role", "messages/1/content", "temperature"]
    if paths != expected:
        raise AssertionError(f"invalid input reported as {problems}, expected the paths {expected}")

    def loop(call: Callable[[], Any], count: int) -> float:
        started = now_ns()
        for _ in range(count):
            call()
        return (now_ns() - started) / 1e3 / count

    subjects = {
        "ours": lambda: loop(lambda: form.validated(inputs), iterations),
        "jsonschema": lambda: loop(lambda: reference.is_valid(completed), max(1, iterations // 10)),
        "invalid": lambda: loop(invalid, max(1, iterations // 20)),
    }
    results = alternate(subjects, rounds, warmup)
    ours = bench.add("valid 4-message chat input: ours (defaults filled + fast check)", "us", results["ours"])
    theirs = bench.add("same input: jsonschema Draft7Validator.is_valid, compiled once", "us", results["jsonschema"])
    bench.add("invalid input, every error with its path (jsonschema report)", "us", results["invalid"],
              note=", ".join(paths))
    bench.ratio("ours (µs, absolute)", ours.median, 1.0, 20.0)
    bench.ratio("ours / jsonschema", ours.median, theirs.median)
    return bench
