"""Per-call cost of one chat step (zero latency) and the cost of input validation.

Per call: `run_action` (validation included) against the strongest plain baseline, a
`requests.Session` tuned as the connector tunes its own (`trust_env=False`, proxies read from the
environment once, a sized pool), and below it the floor: `urllib3` directly and the standard
library's `http.client` on one keep-alive connection. A default `requests.Session().post` and
openai's `AzureOpenAI` client are reported too. All run against the same server process, in
alternating rounds. Wall time is the median of the rounds' median call; client CPU is the median of
the rounds' CPU per call (the server runs in another process, so this is the client's own). It
runs twice: against the bare loopback server (the connector's cost, held to the targets) and
against the emulator (whose own work per request is a large, shared part of every call).
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any, Callable, Dict, List, Tuple
from urllib.parse import urlsplit

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
    import urllib3

    from azure_openai_connector import run_action

    bench = Benchmark(key, title)
    connection = {"api_key": API_KEY, "organization": "bench", "endpoint": server.url,
                  "api_version": AZURE_API_VERSION}  # the same route as the SDK and the floor
    path = f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={AZURE_API_VERSION}"
    url = server.url + path
    body = {"messages": CHAT_MESSAGES}
    session = requests.Session()
    tuned = _tuned_session(url)
    pool = urllib3.PoolManager(maxsize=4)
    encoded = json.dumps(body, separators=(",", ":")).encode()
    json_headers = {"api-key": API_KEY, "Content-Type": "application/json"}
    parsed = urlsplit(server.url)
    plain = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def bare() -> Any:
        response = session.post(url, json=body, headers={"api-key": API_KEY})
        response.raise_for_status()
        return response.json()

    def tuned_session() -> Any:
        response = tuned.post(url, json=body, headers={"api-key": API_KEY})
        response.raise_for_status()
        return response.json()

    def direct_urllib3() -> Any:
        response = pool.request("POST", url, body=encoded, headers=json_headers)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return json.loads(response.data)

    def stdlib() -> Any:
        plain.request("POST", path, body=encoded, headers=json_headers)
        response = plain.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return json.loads(data)

    def ours() -> Any:
        return run_action("create_chat_completion", connection, {"messages": CHAT_MESSAGES})

    calls_by_name: Dict[str, Callable[[], Any]] = {"ours": ours, "tuned": tuned_session, "bare": bare,
                                                   "urllib3": direct_urllib3, "http.client": stdlib}
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
              "tuned": "requests.Session, trust_env=False, proxies read once",
              "urllib3": "urllib3.PoolManager.request (floor)", "http.client": "http.client keep-alive (floor)",
              "sdk": "openai AzureOpenAI chat.completions.create"}
    for name in calls_by_name:
        wall = [median(durations) for durations, _ in results[name]]  # one median per round
        cpu = [per_call for _, per_call in results[name]]
        bench.add(f"{labels[name]}: wall", "us", wall)
        bench.add(f"{labels[name]}: client CPU", "us", cpu)
        figures[name] = (median(wall), median(cpu))
    bench.ratio("ours / tuned Session (wall)", figures["ours"][0], figures["tuned"][0], 1.0 if targets else None)
    bench.ratio("ours / bare Session (wall)", figures["ours"][0], figures["bare"][0])
    bench.ratio("urllib3 / tuned Session (wall)", figures["urllib3"][0], figures["tuned"][0])
    bench.ratio("http.client / tuned Session (wall)", figures["http.client"][0], figures["tuned"][0])
    if "sdk" in figures:
        bench.ratio("ours / openai SDK (wall)", figures["ours"][0], figures["sdk"][0], 0.4 if targets else None)
    bench.ratio("ours / tuned Session (client CPU)", figures["ours"][1], figures["tuned"][1])
    bench.ratio("ours / bare Session (client CPU)", figures["ours"][1], figures["bare"][1])
    if "sdk" in figures:
        bench.ratio("ours / openai SDK (client CPU)", figures["ours"][1], figures["sdk"][1])
        bench.ratio("openai SDK / bare Session (wall)", figures["sdk"][0], figures["bare"][0])
        sdk.close()  # type: ignore[union-attr]
    session.close()
    tuned.close()
    pool.clear()
    plain.close()
    return bench


def _tuned_session(url: str) -> Any:
    """A Session set up as the connector sets up its own: the environment's proxies and CA bundle
    read once, `trust_env` off (no per-call environment and netrc lookups), a sized pool."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(url))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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
    # Held to the ratio, not to a number of microseconds: the same run's jsonschema on the same
    # input is the baseline, whatever the machine and whatever the chat form has grown to.
    bench.ratio("ours / jsonschema", ours.median, theirs.median, 0.10)
    bench.ratio("ours (µs, absolute)", ours.median, 1.0)
    return bench
