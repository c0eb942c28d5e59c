"""The quota pacer's decisions on a fake clock (given the rate-limit headers it paces to the budget,
without them it is the AIMD pacer), the pacer shared per deployment per process and after fork,
the engine's pacer from the `batch_pacer` hook, a daily quota's wait that fails its prompts without
pausing the batch, the long-lived worker pool, and connection pools grown to the concurrency."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest

from azure_openai_connector import hookimpl
from azure_openai_connector.actions import batch
from azure_openai_connector.actions.pacing import (
    PacerRegistry,
    QuotaPacer,
    estimated_tokens,
    parse_duration,
    shared_pacers,
)
from azure_openai_connector.actions.worker_pool import WorkerPool, worker_pool
from azure_openai_connector.connection import connection_from_values
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

from support import API_KEY, RecordedSleep, registered

ACTION = "create_multiple_chat_completions"
# The deployment a step runs on when it names none: the manifest's default model.
DEFAULT_DEPLOYMENT = load_manifest().action(ACTION).inputs.default("model")


class FakeClock:
    """`clock` and `sleep` for a pacer: sleeping moves the clock, and every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: List[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def quota_headers(requests: int = 600, tokens: int = 10**9, remaining_requests: Optional[int] = None,
                  reset_requests: str = "1") -> Dict[str, str]:
    return {"x-ratelimit-limit-requests": str(requests), "x-ratelimit-limit-tokens": str(tokens),
            "x-ratelimit-remaining-requests": str(requests - 1 if remaining_requests is None else remaining_requests),
            "x-ratelimit-remaining-tokens": str(tokens - 100),
            "x-ratelimit-reset-requests": reset_requests, "x-ratelimit-reset-tokens": "1"}


def _starts(pacer: QuotaPacer, fake: FakeClock, count: int, tokens: int = 0,
            headers: Optional[Mapping[str, str]] = None) -> List[float]:
    """The moment each of `count` attempts, run one after another, was let through."""
    starts = []
    for _ in range(count):
        pacer.before_attempt(tokens)
        starts.append(fake.now)
        pacer.after_attempt(200, None, headers)
    return starts


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock()


def _pacer(fake: FakeClock, max_concurrency: int = 4) -> QuotaPacer:
    return QuotaPacer(max_concurrency, clock=fake.clock, sleep=fake.sleep)


# --- decisions on a fake clock ----------------------------------------------------------------------


def test_given_the_headers_it_paces_requests_to_just_under_the_budget(fake: FakeClock) -> None:
    pacer = _pacer(fake)
    pacer.before_attempt(0)
    pacer.after_attempt(200, None, quota_headers(requests=600))  # 10 a second
    assert pacer.limits == {"requests": 600, "tokens": 10**9}

    starts = _starts(pacer, fake, 30, headers=quota_headers(requests=600))
    interval = 60 / 600 / 0.97
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    # The answered attempt spent one of the 0.2 s burst (2 requests), the next goes at once, then
    # one every interval: 0.97 of 10 a second.
    assert starts[0] == pytest.approx(100.0)
    assert gaps == pytest.approx([0.0] + [interval] * 28, abs=1e-9)


def test_the_token_budget_binds_with_the_estimate(fake: FakeClock) -> None:
    pacer = _pacer(fake)
    headers = quota_headers(requests=6000, tokens=6000)  # 100 tokens a second, 100 requests a second
    pacer.before_attempt(50)
    pacer.after_attempt(200, None, headers)
    starts = _starts(pacer, fake, 20, tokens=50, headers=headers)
    steady = [later - earlier for earlier, later in zip(starts[5:], starts[6:])]
    assert steady == pytest.approx([50 / (100 * 0.97)] * len(steady))


def test_without_headers_it_falls_back_to_aimd(fake: FakeClock) -> None:
    pacer = _pacer(fake, max_concurrency=8)
    assert _starts(pacer, fake, 20, tokens=500) == [100.0] * 20  # nothing to pace by: no waits
    assert pacer.limits == {} and fake.sleeps == []
    pacer.before_attempt(0)
    pacer.after_attempt(429, 2.0, {"retry-after": "2"})
    assert (pacer.limit, pacer.pauses) == (4, 1)  # halved, everyone paused for the server's wait
    pacer.before_attempt(0)
    assert fake.sleeps == [1.0, 1.0]  # the 2 s pause, in slices


@pytest.mark.parametrize("headers", [
    {"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "-1", "x-ratelimit-reset-tokens": "0"},
    {"x-ratelimit-limit-requests": "0", "x-ratelimit-remaining-requests": "0"},
    {"x-ratelimit-remaining-requests": "999", "x-ratelimit-remaining-tokens": "999000"},
    {"x-ratelimit-limit-requests": "many"},
])
def test_unknown_budgets_are_not_learned(fake: FakeClock, headers: Dict[str, str]) -> None:
    pacer = _pacer(fake)
    assert _starts(pacer, fake, 10, headers=headers) == [100.0] * 10
    assert pacer.limits == {} and fake.sleeps == []


def test_a_429_while_pacing_pauses_and_aims_lower_instead_of_halving(fake: FakeClock) -> None:
    pacer = _pacer(fake)
    pacer.before_attempt(0)
    pacer.after_attempt(200, None, quota_headers())
    pacer.before_attempt(0)
    pacer.after_attempt(429, 1.5, quota_headers())
    assert (pacer.limit, pacer.pauses) == (4, 1)
    assert pacer.share == pytest.approx(0.97 * 0.9)
    before = fake.now
    pacer.before_attempt(0)
    assert fake.now - before == pytest.approx(1.5)


def test_a_spent_budget_in_the_headers_pauses_until_its_reset(fake: FakeClock) -> None:
    pacer = _pacer(fake)
    pacer.before_attempt(0)
    pacer.after_attempt(200, None, quota_headers(remaining_requests=0, reset_requests="2s"))
    before = fake.now
    pacer.before_attempt(0)
    assert fake.now - before == pytest.approx(2.0)


@pytest.mark.parametrize("make", [
    lambda fake: QuotaPacer(4, clock=fake.clock, sleep=fake.sleep),
    lambda fake: batch.AdaptivePacer(4, clock=fake.clock, sleep=fake.sleep),
])
def test_a_wait_the_http_layer_refuses_pauses_nobody(fake: FakeClock, make: Any) -> None:
    pacer = make(fake)
    pacer.before_attempt()
    pacer.after_attempt(429, 86400.0, {"retry-after": "86400"})
    pacer.before_attempt()
    assert (pacer.pauses, pacer.limit, fake.sleeps) == (0, 4, [])


@pytest.mark.parametrize("text,seconds", [
    ("6m0s", 360.0), ("1.5s", 1.5), ("17ms", 0.017), ("1h2m3s", 3723.0), ("0.25", 0.25), ("2", 2.0),
    ("abc", None), ("5x", None), ("", None), (None, None),
])
def test_reset_durations(text: Optional[str], seconds: Optional[float]) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_the_token_estimate_counts_what_azure_counts() -> None:
    fields = {"messages": [{"role": "system", "content": "abcd" * 3}, {"role": "user", "content": "x" * 9}],
              "max_completion_tokens": 40}
    assert estimated_tokens(fields) == 6 + 40  # 21 characters / 4, rounded up
    assert estimated_tokens({"prompt": ["abcd", "efgh"], "max_tokens": 5}) == 7


# --- shared per deployment per process, and after fork ---------------------------------------------


def _fingerprint(name: str = "contoso") -> Any:
    return connection_from_values({"api_key": API_KEY, "organization": name, "is_openai_key": False,
                                   "api_version": "2024-10-21"}).fingerprint


def test_one_pacer_per_deployment_per_process() -> None:
    registry = PacerRegistry()
    first = registry.pacer(_fingerprint(), "gpt-4o-mini", 8)
    assert registry.pacer(_fingerprint(), "gpt-4o-mini", 16) is first
    assert first.max_concurrency == 16  # widened for the wider step
    assert registry.pacer(_fingerprint(), "gpt-4o", 8) is not first
    assert registry.pacer(_fingerprint("fabrikam"), "gpt-4o-mini", 8) is not first


def _pacer_in_child(parent_pacer: QuotaPacer, queue: Any) -> None:
    child_pacer = shared_pacers().pacer(_fingerprint(), "gpt-4o-mini", 8)
    again = shared_pacers().pacer(_fingerprint(), "gpt-4o-mini", 8)
    outcomes = batch.map_in_order(list(range(6)), lambda n: n * n, 3)
    queue.put((child_pacer is parent_pacer, again is child_pacer, worker_pool().threads_started,
               [result for result, _ in outcomes]))


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="POSIX fork only")
def test_a_forked_child_gets_its_own_pacer_and_worker_pool() -> None:
    parent_pacer = shared_pacers().pacer(_fingerprint(), "gpt-4o-mini", 8)
    batch.map_in_order(list(range(6)), lambda n: n, 3)  # the parent's pool has threads now
    assert worker_pool().threads_started >= 1
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_pacer_in_child, args=(parent_pacer, queue))
    child.start()
    try:
        same_as_parent, same_again, threads_started, squares = queue.get(timeout=60)
    finally:
        child.join(60)
    assert (same_as_parent, same_again) == (False, True)
    assert squares == [0, 1, 4, 9, 16, 25]
    assert 1 <= threads_started <= 2  # the child's own threads, none inherited


# --- the engine's pacer through the hook --------------------------------------------------------------


class RecordingPacer:
    """An engine's pacer: lets everything through, records what it was told."""

    def __init__(self) -> None:
        self.started = 0
        self.finished: List[Tuple[Optional[int], Optional[Mapping[str, str]]]] = []
        self._lock = threading.Lock()

    def before_attempt(self) -> None:
        with self._lock:
            self.started += 1

    def after_attempt(self, status: Optional[int], retry_after: Optional[float],
                      headers: Optional[Mapping[str, str]] = None) -> None:
        with self._lock:
            self.finished.append((status, headers))


class EnginePacerPlugin:
    def __init__(self) -> None:
        self.pacer = RecordingPacer()
        self.calls: List[Tuple[str, str, int]] = []

    @hookimpl
    def batch_pacer(self, connection: Any, deployment: str, max_concurrency: int) -> Any:
        self.calls.append((connection.base_url, deployment, max_concurrency))
        return self.pacer


@pytest.fixture
def quota_emulator() -> Iterator[Emulator]:
    with Emulator(api_key=API_KEY, quota=(600, 100000)) as emulator:
        yield emulator


def test_the_hooks_pacer_is_used_when_a_plugin_provides_one(quota_emulator: Emulator) -> None:
    plugin = EnginePacerPlugin()
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": quota_emulator.url}
    runtime = Runtime(hooks=extension_manager().hook)
    try:
        with registered(plugin, name="test-engine-pacer"):
            result = runtime.run(ACTION, connection, {"prompts": ["a", "b", "c"], "max_concurrency": 2})
    finally:
        runtime.close()
    assert result["totals"]["succeeded"] == 3
    assert plugin.calls == [(quota_emulator.url, DEFAULT_DEPLOYMENT, 2)]
    assert plugin.pacer.started == 3
    assert [status for status, _ in plugin.pacer.finished] == [200, 200, 200]
    assert all(headers["x-ratelimit-limit-requests"] == "600" for _, headers in plugin.pacer.finished)


def test_without_a_plugin_steps_share_the_deployments_pacer(quota_emulator: Emulator) -> None:
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": quota_emulator.url}
    runtime = Runtime()
    try:
        runtime.run(ACTION, connection, {"prompts": ["a", "b"], "max_concurrency": 2})
        shared = shared_pacers().pacer(runtime.connection(connection).fingerprint, DEFAULT_DEPLOYMENT, 2)
        assert shared.limits == {"requests": 600, "tokens": 100000}  # learned by the step
    finally:
        runtime.close()


def test_the_shared_pacer_keeps_a_fan_out_within_the_quota() -> None:
    # 60 requests a minute, 20 times faster: 20 a second, with windows holding 10 requests. Sent as
    # fast as threads allow, 40 prompts would collect 429s; paced, none.
    with Emulator(api_key=API_KEY, quota=(60, 10**6), quota_time_scale=20) as emulator:
        connection = {"api_key": API_KEY, "organization": "paced", "endpoint": emulator.url}
        runtime = Runtime()
        try:
            result = runtime.run(ACTION, connection, {"prompts": [f"p{n}" for n in range(40)], "max_concurrency": 4})
        finally:
            runtime.close()
        assert result["totals"]["succeeded"] == 40
        assert (emulator.quota.admitted, emulator.quota.refused) == (40, 0)


# --- a daily quota's wait: those prompts fail now, the batch goes on --------------------------------


@pytest.mark.parametrize("pacer_class", [QuotaPacer, batch.AdaptivePacer])
def test_a_retry_after_of_a_day_fails_those_prompts_fast_without_pausing_the_batch(
        emulator: Emulator, azure_connection: Dict[str, Any], fake: FakeClock, pacer_class: Any) -> None:
    pacers: List[Any] = []

    def make(limit: int) -> Any:
        pacers.append(pacer_class(limit, clock=fake.clock, sleep=fake.sleep))
        return pacers[-1]

    retry_sleep = RecordedSleep()
    runtime = Runtime(sleep=retry_sleep, pacer_factory=make)
    emulator.script(Fault.rate_limit(retry_after=86400), times=None, match="Prompt 3")
    prompts = [f"Prompt {n}" for n in range(8)]
    try:
        result = runtime.run(ACTION, azure_connection, {"prompts": prompts, "max_concurrency": 3})
    finally:
        runtime.close()
    failed = [item for item in result["results"] if item["error"] is not None]
    assert [item["index"] for item in failed] == [3]
    assert failed[0]["error"]["type"] == "rate_limit" and failed[0]["error"]["retry_after"] == 86400
    assert failed[0]["error"]["attempts"] == 1
    assert result["totals"]["succeeded"] == 7
    assert (pacers[0].pauses, fake.sleeps, retry_sleep.waits) == (0, [], [])


# --- one worker pool per process ---------------------------------------------------------------------


def _wait_until_idle(pool: WorkerPool) -> None:
    deadline = time.monotonic() + 10
    while pool.idle < pool.threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.idle == pool.threads


def test_the_worker_pool_is_reused_across_steps(emulator: Emulator, azure_connection: Dict[str, Any]) -> None:
    runtime = Runtime()
    inputs = {"prompts": [f"p{n}" for n in range(12)], "max_concurrency": 4}
    try:
        runtime.run(ACTION, azure_connection, inputs)
        pool = worker_pool()
        _wait_until_idle(pool)
        started = pool.threads_started
        for _ in range(3):
            assert runtime.run(ACTION, azure_connection, inputs)["totals"]["succeeded"] == 12
            _wait_until_idle(pool)
        assert pool.threads_started == started
    finally:
        runtime.close()


def test_nested_maps_finish_on_a_pool_smaller_than_their_demand() -> None:
    pool = WorkerPool(max_threads=2)
    results: List[Any] = []

    def outer(n: int) -> List[int]:
        inner = batch.map_in_order(list(range(4)), lambda m: n * 10 + m, 4, pool=pool)
        return [value for value, _ in inner]

    worker = threading.Thread(target=lambda: results.append(batch.map_in_order(list(range(4)), outer, 4, pool=pool)))
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "nested map_in_order deadlocked"
    assert [value for value, _ in results[0]] == [[n * 10 + m for m in range(4)] for n in range(4)]
    assert pool.threads_started == 2


def test_stop_on_error_skips_what_has_not_started() -> None:
    def fail_on_two(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    outcomes = batch.map_in_order(list(range(5)), fail_on_two, 1, stop_on_error=True)
    assert [value for value, _ in outcomes] == [0, 1, None, None, None]
    assert [type(error).__name__ for _, error in outcomes] == ["NoneType", "NoneType", "ValueError",
                                                               "Skipped", "Skipped"]


# --- connection pools sized to the concurrency in use ------------------------------------------------


def test_the_connection_pool_grows_to_the_steps_concurrency(emulator: Emulator, azure_connection: Dict[str, Any],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    emulator.latency = 0.05  # every request of a wave is in flight at once
    runtime = Runtime(pool_size=2)
    try:
        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
            result = runtime.run(ACTION, azure_connection, {"prompts": [f"p{n}" for n in range(24)],
                                                            "max_concurrency": 8})
        client = runtime.client(runtime.connection(azure_connection))
    finally:
        runtime.close()
    assert result["totals"]["succeeded"] == 24
    assert client.pool_size == 8
    assert [record.getMessage() for record in caplog.records if "pool is full" in record.getMessage()] == []
