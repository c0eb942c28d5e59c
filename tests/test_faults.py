"""Every fault the emulator can play, against every action that can meet it, on both services.

Each case states how many attempts are made, how long each wait is and what the step ends with
(a typed error, or a result). Time is injected, never slept: the HTTP layer's `clock`, `sleep` and
jitter (`random_fraction`) and the batch pacer's clock and sleep are one fake clock that moves
only when something waits, so the waits are exact and the step's whole duration on that clock
is the sum of its waits. A `http_request_finished` observer sees every attempt, and the emulator
counts what reached it; the two must agree.

In batches (multiple completions, summaries) the fault hits one item only: every other item
succeeds, is kept, and is never sent twice.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Type

import pytest
from jsonschema import Draft7Validator

from azure_openai_connector import errors
from azure_openai_connector.actions import batch
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.emulator import playback
from azure_openai_connector.http import INITIAL_RETRY_DELAY, MAX_RETRY_AFTER, RetryPolicy
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.runtime import Runtime

from support import API_KEY, AttemptRecorder, registered

JITTER_FRACTION = 0.5  # the injected random(): every backoff is 1 - 0.25 * 0.5 = 87.5 % of nominal
BACKOFF_1 = RetryPolicy().backoff(1, JITTER_FRACTION)
BACKOFF_2 = RetryPolicy().backoff(2, JITTER_FRACTION)
FROZEN_WALL_CLOCK = 1_800_000_000.0  # a whole second, so an HTTP date (1 s resolution) is exact
MANIFEST = load_manifest()
MULTIPLE = "create_multiple_chat_completions"
SUMMARIZE = "summarize_text"


def test_the_expected_backoffs_are_what_openai_python_waits():
    # 0.5 s then 1 s nominal, shortened by at most a quarter by jitter.
    assert BACKOFF_1 == INITIAL_RETRY_DELAY * (1 - 0.25 * JITTER_FRACTION) == 0.4375
    assert BACKOFF_2 == 2 * INITIAL_RETRY_DELAY * (1 - 0.25 * JITTER_FRACTION) == 0.875


# --- the fake clock, the observer, the runtime ------------------------------------------------------


class FakeTime:
    """One clock for everything that waits: `sleep` (the HTTP layer's retry waits) and `pause` (the
    batch pacer's waits) record and move the clock; nothing really sleeps."""

    def __init__(self) -> None:
        self.start = self.now = 1000.0
        self.waits: List[float] = []
        self.pauses: List[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            self.now += seconds

    def pause(self, seconds: float) -> None:
        with self._lock:
            self.pauses.append(seconds)
            self.now += seconds

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class FrozenWallClock:
    """Stands in for the `time` module where HTTP dates are written and read."""

    def __init__(self, now: float) -> None:
        self._now = now

    def time(self) -> float:
        return self._now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(api_key=API_KEY) as emulator:
        yield emulator


@pytest.fixture
def emulator(shared_emulator: Emulator) -> Iterator[Emulator]:
    """One emulator for the module (starting one per case would be most of the run time), with
    requests, counters and scripted faults forgotten before and after every test."""
    shared_emulator.reset()
    yield shared_emulator
    shared_emulator.reset()


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    # HTTP dates: the emulator writes them against a frozen wall clock, and the client (given the
    # same clock in make_runtime) reads them against it.
    monkeypatch.setattr(playback, "time", FrozenWallClock(FROZEN_WALL_CLOCK))
    return fake


@pytest.fixture
def attempts() -> Iterator[AttemptRecorder]:
    recorder = AttemptRecorder()
    with registered(recorder, name=f"test-faults-recorder-{id(recorder)}"):
        yield recorder


def make_runtime(fake: FakeTime, **options: Any) -> Runtime:
    # The batch pacer waits on the same fake clock, its pauses recorded apart from retry waits.
    return Runtime(hooks=extension_manager().hook, sleep=fake.sleep, clock=fake.clock,
                   wall_clock=lambda: FROZEN_WALL_CLOCK,
                   random_fraction=lambda: JITTER_FRACTION,
                   pacer_factory=lambda limit: batch.AdaptivePacer(limit, clock=fake.clock, sleep=fake.pause),
                   **options)


@pytest.fixture
def clocked(fake_time: FakeTime, attempts: AttemptRecorder) -> Iterator[Runtime]:
    runtime = make_runtime(fake_time)
    try:
        yield runtime
    finally:
        runtime.close()


# --- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    fault: Fault
    times: Optional[int]  # None: every matching request
    attempts: int
    waits: Sequence[float]
    error: Optional[Type[errors.ConnectorError]] = None
    status: Optional[int] = None
    code: Optional[str] = None
    chat_only: bool = False  # a fault that rewrites chat answers; images never see it
    checks: Dict[str, Any] = field(default_factory=dict)


RETRIED = [
    Case("429-retry-after-ms", Fault.rate_limit(retry_after_ms=250), 1, 2, [0.25]),
    Case("429-retry-after-seconds", Fault.rate_limit(retry_after=2), 1, 2, [2.0]),
    Case("429-retry-after-http-date", Fault.rate_limit(retry_after=3, retry_after_date=True), 1, 2, [3.0]),
    Case("500-once", Fault.status(500), 1, 2, [BACKOFF_1]),
    Case("502-once", Fault.status(502), 1, 2, [BACKOFF_1]),
    Case("503-once", Fault.status(503), 1, 2, [BACKOFF_1]),
    Case("500-twice", Fault.status(500), 2, 3, [BACKOFF_1, BACKOFF_2]),
    Case("connection-dropped-once", Fault.drop(), 1, 2, [BACKOFF_1]),
    Case("dropped-mid-body-once", Fault.drop_mid_body(), 1, 2, [BACKOFF_1]),
]
FAILED = [
    Case("429-above-the-cap", Fault.rate_limit(retry_after=MAX_RETRY_AFTER + 1), 1, 1, [],
         errors.RateLimitError, 429, checks={"retry_after": MAX_RETRY_AFTER + 1}),
    Case("429-ms-above-the-cap", Fault.rate_limit(retry_after_ms=(MAX_RETRY_AFTER + 1) * 1000), 1, 1, [],
         errors.RateLimitError, 429, checks={"retry_after": MAX_RETRY_AFTER + 1}),
    Case("429-every-time", Fault.rate_limit(retry_after_ms=10), None, 3, [0.01, 0.01],
         errors.RateLimitError, 429, checks={"retry_after": 0.01}),
    Case("500-every-time", Fault.status(500), None, 3, [BACKOFF_1, BACKOFF_2], errors.ServerError, 500),
    Case("502-every-time", Fault.status(502), None, 3, [BACKOFF_1, BACKOFF_2], errors.ServerError, 502),
    Case("503-every-time", Fault.status(503), None, 3, [BACKOFF_1, BACKOFF_2], errors.ServerError, 503),
    Case("connection-dropped-every-time", Fault.drop(), None, 3, [BACKOFF_1, BACKOFF_2],
         errors.ApiConnectionError),
    Case("dropped-mid-body-every-time", Fault.drop_mid_body(), None, 3, [BACKOFF_1, BACKOFF_2],
         errors.ApiConnectionError),
    Case("malformed-json", Fault.malformed(), 1, 1, [], errors.InvalidResponseError, 200, "invalid_json"),
    Case("200-without-choices", Fault.missing_choices(), 1, 1, [], errors.InvalidResponseError, 200,
         "missing_choices", chat_only=True),
    Case("content-filter-on-the-prompt", Fault.content_filter_prompt(), 1, 1, [],
         errors.ContentFilterError, 400, "content_filter"),
    Case("content-filter-on-the-prompt-spec-shape", Fault.content_filter_prompt(spec_shape=True), 1, 1, [],
         errors.ContentFilterError, 400, "content_filter"),
    Case("content-filter-on-the-output", Fault.content_filter_output(), 1, 1, [],
         errors.ContentFilterError, 200, "content_filter", chat_only=True),
    Case("insufficient-quota", Fault.insufficient_quota(), 1, 1, [], errors.QuotaExceededError, 429,
         "insufficient_quota"),
    Case("401", Fault.unauthorized(), 1, 1, [], errors.AuthenticationError, 401),
    Case("404-deployment-not-found", Fault.not_found(), 1, 1, [], errors.NotFoundError, 404),
    Case("400", Fault.bad_request("This request is refused."), 1, 1, [], errors.BadRequestError, 400),
]
CASES = RETRIED + FAILED


def case_params(*, chat: bool) -> List[Any]:
    return [pytest.param(case, id=case.id) for case in CASES if chat or not case.chat_only]


def assert_typed_error(error: errors.ConnectorError, case: Case, connection: Dict[str, Any]) -> None:
    assert type(error) is case.error, repr(error)
    assert error.attempts == case.attempts
    if case.status is not None:
        assert error.status == case.status
        assert error.request_id, "every answer's request ID is kept"
    if case.code is not None:
        assert error.code == case.code
    if case.id == "404-deployment-not-found":
        assert error.code == ("model_not_found" if connection.get("is_openai_key") else "DeploymentNotFound")
    if case.error is errors.ContentFilterError:
        filters = error.details["content_filter_results"]
        assert filters, "the filter's verdict is kept"
    for name, expected in case.checks.items():
        assert getattr(error, name) == expected


def assert_timing(fake: FakeTime, recorder: AttemptRecorder, waits: Sequence[float]) -> None:
    assert sorted(fake.waits) == sorted(waits)
    assert sorted(recorder.retry_delays) == sorted(waits)
    # Nothing waited outside the injected clock: the step lasted exactly its waits.
    assert fake.elapsed == pytest.approx(sum(fake.waits) + sum(fake.pauses))


# --- one request per step: chat and image -------------------------------------------------------------


@pytest.mark.parametrize("case", case_params(chat=True))
def test_chat_completion(case: Case, emulator: Emulator, connection: Dict[str, Any], clocked: Runtime,
                         fake_time: FakeTime, attempts: AttemptRecorder) -> None:
    emulator.script(case.fault, times=case.times)
    run_single("create_chat_completion", case, emulator, connection, clocked, fake_time, attempts, {})


@pytest.mark.parametrize("case", case_params(chat=False))
def test_create_image(case: Case, emulator: Emulator, connection: Dict[str, Any], clocked: Runtime,
                      fake_time: FakeTime, attempts: AttemptRecorder) -> None:
    emulator.script(case.fault, times=case.times)
    run_single("create_image", case, emulator, connection, clocked, fake_time, attempts, {})


@pytest.mark.parametrize("case", case_params(chat=True))
def test_summarize_short_text(case: Case, emulator: Emulator, connection: Dict[str, Any], clocked: Runtime,
                              fake_time: FakeTime, attempts: AttemptRecorder) -> None:
    emulator.script(case.fault, times=case.times)
    run_single(SUMMARIZE, case, emulator, connection, clocked, fake_time, attempts, {})


def run_single(action: str, case: Case, emulator: Emulator, connection: Dict[str, Any], runtime: Runtime,
               fake: FakeTime, recorder: AttemptRecorder, inputs: Dict[str, Any]) -> None:
    if case.error is None:
        result = runtime.run(action, connection, inputs)
        Draft7Validator(MANIFEST.action(action).output).validate(result)
    else:
        with pytest.raises(errors.ConnectorError) as raised:
            runtime.run(action, connection, inputs)
        assert_typed_error(raised.value, case, connection)
    assert emulator.request_count == case.attempts
    assert len(recorder.exchanges) == case.attempts
    assert [exchange.request.attempt for exchange in recorder.exchanges] == list(range(1, case.attempts + 1))
    assert recorder.exchanges[-1].will_retry is False
    assert_timing(fake, recorder, case.waits)


# --- batches: the fault hits one item; every other item is kept and sent once ------------------------


def numbered_prompts(count: int) -> List[str]:
    return [f"Prompt {index:02d}: say something about number {index}" for index in range(count)]


def user_text(request: Any) -> str:
    return next(m["content"] for m in request.json["messages"] if m["role"] == "user")


@pytest.mark.parametrize("case", case_params(chat=True))
def test_multiple_completions_keep_every_other_item(case: Case, emulator: Emulator, connection: Dict[str, Any],
                                                    clocked: Runtime, fake_time: FakeTime,
                                                    attempts: AttemptRecorder) -> None:
    prompts = numbered_prompts(4)
    emulator.script(case.fault, times=case.times, match="Prompt 01:")

    result = clocked.run(MULTIPLE, connection, {"prompts": prompts, "max_concurrency": 4})

    Draft7Validator(MANIFEST.action(MULTIPLE).output).validate(result)
    items = result["results"]
    assert [item["index"] for item in items] == [0, 1, 2, 3]
    for item in items[:1] + items[2:]:
        assert item["error"] is None and item["content"] == f"Emulated reply to: {item['prompt']}"
        assert item["usage"]["total_tokens"] > 0
    faulted = items[1]
    if case.error is None:
        assert faulted["error"] is None and faulted["content"]
        assert result["totals"]["succeeded"] == 4
    else:
        assert faulted["content"] is None and faulted["usage"] is None
        assert faulted["error"]["type"] == case.error.kind
        assert faulted["error"]["attempts"] == case.attempts
        if case.status is not None:
            assert faulted["error"]["status"] == case.status and faulted["error"]["request_id"]
        assert result["totals"] == {**result["totals"], "succeeded": 3, "failed": 1}
    sent = [user_text(request) for request in emulator.requests]
    assert sorted(sent) == sorted(prompts + [prompts[1]] * (case.attempts - 1))
    assert len(attempts.exchanges) == emulator.request_count == 3 + case.attempts
    assert_timing(fake_time, attempts, case.waits)


SUMMARY_CHUNK = 1000


def three_part_text() -> str:
    """Three paragraphs of about 900 characters, so each is one chunk; each has its own marker."""
    return "\n\n".join(" ".join(f"Part {part} sentence {s} says something plain." for s in range(22))
                       for part in range(3))


@pytest.mark.parametrize("case", case_params(chat=True))
def test_summaries_keep_every_part_that_succeeded(case: Case, emulator: Emulator, connection: Dict[str, Any],
                                                  clocked: Runtime, fake_time: FakeTime,
                                                  attempts: AttemptRecorder) -> None:
    text = three_part_text()
    emulator.script(case.fault, times=case.times, match="Part 1 sentence 0 ")
    inputs = {"text": text, "chunk_size": SUMMARY_CHUNK}

    if case.error is None:
        result = clocked.run(SUMMARIZE, connection, inputs)
        Draft7Validator(MANIFEST.action(SUMMARIZE).output).validate(result)
        assert result["chunks"] == 3
        # Three part summaries (one of them retried) and the final one; nothing else re-sent.
        assert result["usage"]["requests"] == 4
    else:
        with pytest.raises(errors.ConnectorError) as raised:
            clocked.run(SUMMARIZE, connection, inputs)
        assert_typed_error(raised.value, case, connection)
        assert "chunk 2 of 3" in raised.value.message
    parts = [user_text(request) for request in emulator.requests]
    for part in (0, 2):
        # The other parts were each asked for once; after a part fails for good, parts not yet
        # started are skipped (the step fails anyway), but none is ever asked for twice.
        sent = sum(text.startswith(f"Part {part} sentence 0 ") for text in parts)
        assert sent == 1 if case.error is None else sent <= 1
    assert sum(text.startswith("Part 1 sentence 0 ") for text in parts) == case.attempts
    combined = [text for text in parts if text.startswith("Emulated reply to:")]
    assert len(combined) == (1 if case.error is None else 0), "no final summary from missing parts"
    assert len(attempts.exchanges) == emulator.request_count
    assert_timing(fake_time, attempts, case.waits)


# --- read timeouts and refused connections -------------------------------------------------------------


def test_read_timeout_once_is_retried(emulator: Emulator, connection: Dict[str, Any], fake_time: FakeTime,
                                      attempts: AttemptRecorder) -> None:
    runtime = make_runtime(fake_time, read_timeout=0.2)
    emulator.script(Fault.slow(2), times=1)
    try:
        result = runtime.run("create_chat_completion", connection, {})
    finally:
        runtime.close()
    assert result["content"]
    assert emulator.request_count == len(attempts.exchanges) == 2
    assert isinstance(attempts.exchanges[0].error, errors.ApiTimeoutError)
    assert_timing(fake_time, attempts, [BACKOFF_1])


@pytest.mark.parametrize("action", ["create_chat_completion", MULTIPLE])
def test_read_timeout_every_time(action: str, emulator: Emulator, azure_connection: Dict[str, Any],
                                 fake_time: FakeTime, attempts: AttemptRecorder) -> None:
    runtime = make_runtime(fake_time, read_timeout=0.2)
    emulator.script(Fault.slow(2), times=None, match="Prompt 01:" if action == MULTIPLE else None)
    inputs = {"prompts": numbered_prompts(3)} if action == MULTIPLE else {}
    try:
        if action == MULTIPLE:
            result = runtime.run(action, azure_connection, inputs)
            [faulted] = [item for item in result["results"] if item["error"]]
            assert faulted["index"] == 1 and faulted["error"]["type"] == "timeout"
            assert faulted["error"]["attempts"] == 3
            assert result["totals"]["succeeded"] == 2
        else:
            with pytest.raises(errors.ApiTimeoutError) as raised:
                runtime.run(action, azure_connection, inputs)
            assert raised.value.attempts == 3
    finally:
        runtime.close()
    timed_out = [e for e in attempts.exchanges if isinstance(e.error, errors.ApiTimeoutError)]
    assert len(timed_out) == 3 and all(e.status is None for e in timed_out)
    assert emulator.request_count == len(attempts.exchanges)
    assert_timing(fake_time, attempts, [BACKOFF_1, BACKOFF_2])


def closed_port() -> int:
    with socket.socket() as probe:  # free a moment ago, nothing listens there now
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("action", ["create_chat_completion", "create_image", SUMMARIZE, MULTIPLE])
def test_connection_refused(action: str, clocked: Runtime, fake_time: FakeTime, attempts: AttemptRecorder) -> None:
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": f"http://127.0.0.1:{closed_port()}"}
    if action == MULTIPLE:
        result = clocked.run(action, connection, {"prompts": numbered_prompts(2)})
        assert [item["error"]["type"] for item in result["results"]] == ["connection_error"] * 2
        assert [item["error"]["attempts"] for item in result["results"]] == [3, 3]
        waits = [BACKOFF_1, BACKOFF_2] * 2
    else:
        with pytest.raises(errors.ApiConnectionError) as raised:
            clocked.run(action, connection, {})
        assert type(raised.value) is errors.ApiConnectionError and raised.value.attempts == 3
        waits = [BACKOFF_1, BACKOFF_2]
    assert all(exchange.status is None for exchange in attempts.exchanges)
    assert len(attempts.exchanges) == len(waits) // 2 * 3
    assert_timing(fake_time, attempts, waits)


# --- raw requests: the step's own retry options ------------------------------------------------------


RAW_CHAT = {"url": "/deployments/gpt-4o-mini/chat/completions", "method": "POST",
            "data": {"messages": [{"role": "user", "content": "hi"}]}}


@pytest.mark.parametrize("fault, times, options, attempts_made, waits, outcome", [
    # The seed's default: no retries at all.
    (Fault.status(500), None, {}, 1, [], errors.ServerError),
    (Fault.rate_limit(retry_after_ms=250), None, {}, 1, [], errors.RateLimitError),
    # A fixed delay, without jitter.
    (Fault.status(500), None, {"max_retries": 2, "retry_delay_ms": 100}, 3, [0.1, 0.1], errors.ServerError),
    (Fault.drop(), None, {"max_retries": 2, "retry_delay_ms": 100}, 3, [0.1, 0.1], errors.ApiConnectionError),
    # Exponential backoff from the step's delay, with jitter.
    (Fault.status(503), 2, {"max_retries": 3, "retry_delay_ms": 100, "use_exponential_backoff": True}, 3,
     [0.1 * 0.875, 0.2 * 0.875], "ok"),
    # The server's hint wins over the step's delay.
    (Fault.rate_limit(retry_after_ms=250), 1, {"max_retries": 1, "retry_delay_ms": 5000}, 2, [0.25], "ok"),
    # A 400 is retried only when the step says "retry on all errors".
    (Fault.bad_request(), None, {"max_retries": 2, "retry_delay_ms": 100}, 1, [], errors.BadRequestError),
    (Fault.bad_request(), None, {"max_retries": 2, "retry_delay_ms": 100, "retry_all_errors": True}, 3,
     [0.1, 0.1], errors.BadRequestError),
    # Raw requests hand back what the service said: a filtered output is a 200 like any other...
    (Fault.content_filter_output(), 1, {}, 1, [], "ok"),
    (Fault.missing_choices(), 1, {}, 1, [], "ok"),
    # ...but a body that is not the JSON asked for is still an error.
    (Fault.malformed(), 1, {}, 1, [], errors.InvalidResponseError),
    (Fault.insufficient_quota(), None, {"max_retries": 2}, 1, [], errors.QuotaExceededError),
], ids=["500-default", "429-default", "500-fixed", "drop-fixed", "503-exponential", "429-hint-wins",
        "400-not-retried", "400-retry-all", "filtered-output", "no-choices", "malformed", "quota"])
def test_raw_request_retry_options(fault: Fault, times: Optional[int], options: Dict[str, Any], attempts_made: int,
                                   waits: List[float], outcome: Any, emulator: Emulator,
                                   azure_connection: Dict[str, Any], clocked: Runtime, fake_time: FakeTime,
                                   attempts: AttemptRecorder) -> None:
    emulator.script(fault, times=times)
    inputs = {**RAW_CHAT, **options}
    if outcome == "ok":
        result = clocked.run("raw_request", azure_connection, inputs)
        assert result["status"] == 200
        Draft7Validator(MANIFEST.action("raw_request").output).validate(result)
    else:
        with pytest.raises(errors.ConnectorError) as raised:
            clocked.run("raw_request", azure_connection, inputs)
        assert type(raised.value) is outcome and raised.value.attempts == attempts_made
    assert emulator.request_count == len(attempts.exchanges) == attempts_made
    assert [e.retry_delay for e in attempts.exchanges if e.will_retry] == pytest.approx(waits)
    assert fake_time.waits == pytest.approx(waits)
    assert fake_time.elapsed == pytest.approx(sum(waits))


@pytest.mark.parametrize("action,inputs", [
    ("create_multiple_chat_completions", {"prompts": ["one", "two"], "max_concurrency": 3}),
    (SUMMARIZE, {"text": "word " * 3000, "chunk_size": 5000, "max_concurrency": 3}),
])
def test_batch_steps_pace_with_the_runtimes_pacer(emulator: Emulator, azure_connection: Dict[str, Any],
                                                   fake_time: FakeTime, action: str,
                                                   inputs: Dict[str, Any]) -> None:
    # What the batch fixtures rely on: the pacer comes from the Runtime, so it can run on the fake clock.
    made: List[int] = []

    def pacer_factory(limit: int) -> batch.AdaptivePacer:
        made.append(limit)
        return batch.AdaptivePacer(limit, clock=fake_time.clock, sleep=fake_time.pause)

    runtime = Runtime(sleep=fake_time.sleep, clock=fake_time.clock, pacer_factory=pacer_factory)
    try:
        runtime.run(action, azure_connection, inputs)
    finally:
        runtime.close()
    assert made == [3]