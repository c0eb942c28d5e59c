"""Load: 2 000 steps from 32 threads through one Runtime, against the emulator with 10 % faults.

Every step ends in a result or a typed error, nothing hangs (the whole run is bounded), the
attempts the observer hook reports are exactly the requests the emulator saw (and exactly the
faulted ones failed), and afterwards no socket or thread is left behind.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Dict, Iterator, List, Set, Tuple

import pytest
from jsonschema import Draft7Validator

from azure_openai_connector import errors
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.runtime import Runtime

from support import API_KEY, AttemptRecorder, registered

pytestmark = pytest.mark.slow

STEPS = 2000
THREADS = 32
FAULT_RATE = 0.1
RUN_BOUND_S = 120.0       # the whole run; a hang fails the test instead of stalling the suite
SETTLE_BOUND_S = 10.0     # for server threads to notice closed connections
LONGEST_REAL_WAIT_S = 0.002
FAULTS = [Fault.drop(), Fault.drop_mid_body(), Fault.status(500), Fault.status(503),
          Fault.rate_limit(retry_after_ms=5), Fault.bad_request("Refused under load.")]
TYPED_ERRORS = (errors.BadRequestError, errors.ServerError, errors.RateLimitError, errors.ApiConnectionError)
MANIFEST = load_manifest()


class TinySleep:
    """Retry waits are recorded and cut to a couple of milliseconds: real interleaving, no idling."""

    def __init__(self) -> None:
        self.waits: List[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
        time.sleep(min(seconds, LONGEST_REAL_WAIT_S))


def open_fds() -> Set[Tuple[str, str]]:
    """(fd, what it is) for every open descriptor: a socket closed and another opened under the
    same number is a different pair."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:  # closed meanwhile (or the listing's own descriptor)
            pass
    return found


def new_threads(before: Set[threading.Thread]) -> List[str]:
    return [thread.name for thread in threading.enumerate() if thread not in before]


def settle(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + SETTLE_BOUND_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.02)
    return True


@pytest.fixture
def counter() -> Iterator[AttemptRecorder]:
    recorder = AttemptRecorder()
    with registered(recorder, name=f"test-load-counter-{id(recorder)}"):
        yield recorder


def plan(emulator: Emulator) -> List[Tuple[str, Dict[str, Any], Dict[str, Any]]]:
    """Mostly chat completions, on both services, with a few of every other action mixed in."""
    azure = {"api_key": API_KEY, "organization": "contoso", "endpoint": emulator.url}
    openai = {"api_key": API_KEY, "is_openai_key": True, "endpoint": emulator.url + "/v1"}
    steps = []
    for index in range(STEPS):
        connection = azure if index % 2 else openai
        if index % 97 == 0:
            steps.append(("create_multiple_chat_completions", connection,
                          {"prompts": [f"step {index} prompt {n}" for n in range(3)]}))
        elif index % 151 == 0:
            steps.append(("summarize_text", connection, {}))
        elif index % 199 == 0:
            steps.append(("create_image", connection, {"n": 2}))
        elif index % 251 == 0:
            steps.append(("raw_request", connection, {"url": "/v1/models"}))
        else:
            steps.append(("create_chat_completion", connection,
                          {"messages": [{"role": "user", "content": f"step {index}"}]}))
    return steps


def run_one(runtime: Runtime, action: str, connection: Dict[str, Any], inputs: Dict[str, Any]) -> Tuple[str, Any]:
    try:
        result = runtime.run(action, connection, inputs)
    except TYPED_ERRORS as error:
        return "error", (action, error)
    Draft7Validator(MANIFEST.action(action).output).validate(result)
    return "ok", result


def test_two_thousand_steps_from_32_threads_with_random_faults(counter: AttemptRecorder) -> None:
    # Compared as sets, not counts: a leftover thread of an earlier test ending meanwhile must
    # neither hide a leak nor fake one.
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    emulator = Emulator(api_key=API_KEY).start()
    emulator.random_faults(rate=FAULT_RATE, faults=FAULTS, seed=20261125)
    sleep = TinySleep()
    runtime = Runtime(hooks=extension_manager().hook, sleep=sleep, read_timeout=10.0)
    pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="load")
    pending: set = set()
    try:
        futures = [pool.submit(run_one, runtime, *step) for step in plan(emulator)]
        _, pending = wait(futures, timeout=RUN_BOUND_S, return_when=FIRST_EXCEPTION)
        # Anything but a result or a typed error is re-raised here and fails the test.
        outcomes = [future.result() for future in futures if future.done()]
        assert not pending, f"{len(pending)} steps still running after {RUN_BOUND_S} s"
    finally:
        # After a hang, do not wait for the stuck workers (their read timeout ends them).
        pool.shutdown(wait=not pending, cancel_futures=True)
        runtime.close()
        served = emulator.faults_served
        requests_seen = emulator.request_count
        emulator.stop()

    assert len(outcomes) == STEPS
    results = [value for kind, value in outcomes if kind == "ok"]
    failures = [value for kind, value in outcomes if kind == "error"]
    assert len(results) + len(failures) == STEPS
    assert len(results) > STEPS * 0.9, "with retries, nearly every step succeeds"

    # The observer saw every attempt, and the emulator saw every attempt: the same number.
    exchanges = counter.exchanges
    assert len(exchanges) == requests_seen
    # Exactly the faulted requests failed; every other one answered 2xx.
    failed_attempts = [exchange for exchange in exchanges if exchange.error is not None]
    assert len(failed_attempts) == len(served) > 0
    assert all(exchange.status is None or 200 <= exchange.status < 300
               for exchange in exchanges if exchange.error is None)
    # Retried attempts are those that waited; the refusals (400) never were.
    assert len(sleep.waits) == sum(exchange.will_retry for exchange in exchanges)
    assert not any(exchange.will_retry for exchange in failed_attempts
                   if isinstance(exchange.error, errors.BadRequestError))
    # Each failed step's error says how many attempts it made: a refusal ends the step at once
    # (after any retried faults before it), anything retryable only once all three were made.
    for action, error in failures:
        most = 1 if action == "raw_request" else 3  # raw requests retry only when asked to
        if isinstance(error, errors.BadRequestError):
            assert 1 <= error.attempts <= most, (action, error)
        else:
            assert error.attempts == most, (action, error)
    batch_items = [item for result in results for item in result.get("results", ())]
    assert all(item["error"] is None or item["error"]["type"] in {"bad_request", "server_error", "rate_limit",
                                                                   "connection_error"} for item in batch_items)

    # Nothing leaked: every pooled socket is closed and every worker and server thread has ended
    # (server threads end once they see their client's socket closed, hence the bounded wait).
    assert settle(lambda: not new_threads(threads_before)), new_threads(threads_before)
    assert settle(lambda: not open_fds() - fds_before), sorted(open_fds() - fds_before)
