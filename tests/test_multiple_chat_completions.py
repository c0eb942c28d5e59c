"""Create Multiple Chat Completions against the emulator, plus the batch machinery it runs on."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

import pytest
from jsonschema import Draft7Validator
from requests.structures import CaseInsensitiveDict

import azure_openai_connector
from azure_openai_connector import InputValidationError
from azure_openai_connector.actions import create_multiple_chat_completions as multiple
from azure_openai_connector.actions.batch import AdaptivePacer, Skipped, map_in_order, total_usage
from azure_openai_connector.emulator import Fault
from azure_openai_connector.http import INITIAL_RETRY_DELAY, Response
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.runtime import Runtime

ACTION = "create_multiple_chat_completions"
FORM = load_manifest().action(ACTION).inputs
OUTPUT = Draft7Validator(load_manifest().action(ACTION).output)


def is_openai(connection: Dict[str, Any]) -> bool:
    return bool(connection.get("is_openai_key"))


def numbered_prompts(count: int) -> List[str]:
    # "Prompt 07:" is unique to one prompt, so the emulator can single it out.
    return [f"Prompt {index:02d}: describe item number {index} in one line" for index in range(count)]


def user_message(request: Any) -> str:
    return [m for m in request.json["messages"] if m["role"] == "user"][0]["content"]


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.002)
    return True


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: List[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- the chat API ------------------------------------------------------------------------------


def test_defaults_send_each_prompt_as_its_own_request(runtime, connection, emulator):
    prompts = FORM.default("prompts")

    result = runtime.run(ACTION, connection, {})

    assert [item["index"] for item in result["results"]] == list(range(len(prompts)))
    assert [item["prompt"] for item in result["results"]] == prompts
    for item in result["results"]:
        assert item["error"] is None
        assert item["content"] == f"Emulated reply to: {item['prompt']}"
        assert item["finish_reason"] == "stop"
        assert item["usage"]["total_tokens"] > 0
    assert result["model"] == FORM.default("model")
    assert emulator.request_count == len(prompts)
    for request in emulator.requests:
        assert request.path.endswith("/chat/completions")
        assert request.json["messages"] == [{"role": "user", "content": user_message(request)}]
        assert "temperature" not in request.json and "max_completion_tokens" not in request.json
        # OpenAI and Azure's v1 API (the default) both name the model in the body.
        assert request.json["model"] == FORM.default("model")
        assert request.path == ("/v1/chat/completions" if is_openai(connection) else "/openai/v1/chat/completions")
    assert sorted(user_message(r) for r in emulator.requests) == sorted(prompts)


def test_system_temperature_and_max_tokens_go_into_every_request(runtime, azure_connection, emulator):
    result = runtime.run(ACTION, azure_connection, {
        "model": "team-chat", "prompts": ["one", "two"], "system": "Answer briefly.", "temperature": 0.2, "max_tokens": 50})

    assert result["totals"]["succeeded"] == 2
    for request in emulator.requests:
        assert request.json["messages"][0] == {"role": "system", "content": "Answer briefly."}
        assert request.json["temperature"] == 0.2
        assert request.json["max_completion_tokens"] == 50
        assert "max_tokens" not in request.json


def test_public_run_action(openai_connection, emulator):
    result = azure_openai_connector.run_action(ACTION, openai_connection, {"prompts": ["a", "b", "c"]})

    assert [item["content"] for item in result["results"]] == [
        "Emulated reply to: a", "Emulated reply to: b", "Emulated reply to: c"]
    assert result["totals"]["succeeded"] == 3 and result["totals"]["failed"] == 0
    assert emulator.request_count == 3


def test_twenty_prompts_one_permanent_failure_and_rate_limits(azure_connection, emulator, recorded_sleep):
    pacers: List[AdaptivePacer] = []

    def recorded_pacer(limit: int) -> AdaptivePacer:
        pacers.append(AdaptivePacer(limit))
        return pacers[-1]

    runtime = Runtime(hooks=extension_manager().hook, sleep=recorded_sleep, pacer_factory=recorded_pacer)
    prompts = numbered_prompts(20)
    emulator.latency = 0.05
    emulator.script(Fault.bad_request("This prompt is refused."), times=None, match="Prompt 07:")
    rate_limited = ("Prompt 01:", "Prompt 02:", "Prompt 03:", "Prompt 12:", "Prompt 15:")
    for marker in rate_limited:
        emulator.script(Fault.rate_limit(retry_after_ms=40), times=1, match=marker)

    try:
        result = runtime.run(ACTION, azure_connection, {"prompts": prompts, "max_concurrency": 4})
    finally:
        runtime.close()

    results = result["results"]
    assert [item["index"] for item in results] == list(range(20))
    assert [item["prompt"] for item in results] == prompts
    failed = [item for item in results if item["error"] is not None]
    assert [item["index"] for item in failed] == [7]
    assert failed[0]["error"]["type"] == "bad_request" and failed[0]["error"]["status"] == 400
    assert failed[0]["content"] is None and failed[0]["usage"] is None
    assert all(item["content"] == f"Emulated reply to: {item['prompt']}"
               for item in results if item["index"] != 7)
    assert result["totals"]["succeeded"] == 19 and result["totals"]["failed"] == 1
    assert emulator.peak_concurrency <= 4
    OUTPUT.validate(result)
    # Each rate-limited prompt was retried once after the server's hint; the refusal never was.
    assert recorded_sleep.waits == [0.04] * len(rate_limited)
    assert emulator.request_count == 20 + len(rate_limited)
    assert sum("Prompt 07:" in user_message(r) for r in emulator.requests) == 1
    # The whole batch slowed down, not only the workers that were told to.
    (pacer,) = pacers
    assert pacer.pauses >= 1
    assert pacer.lowest_limit < 4


def test_totals_add_up_and_a_filtered_output_fails_only_its_own_slot(runtime, connection, emulator):
    emulator.script(Fault.content_filter_output(), times=None, match="Prompt 02:")

    result = runtime.run(ACTION, connection, {"prompts": numbered_prompts(5)})

    items = result["results"]
    assert items[2]["error"]["type"] == "content_filter"
    assert items[2]["content"] is None and items[2]["finish_reason"] is None
    assert all(item["error"] is None for index, item in enumerate(items) if index != 2)
    totals = result["totals"]
    assert (totals["succeeded"], totals["failed"]) == (4, 1)
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert totals[name] == sum(item["usage"][name] for item in items if item["usage"])
    assert totals["total_tokens"] == totals["prompt_tokens"] + totals["completion_tokens"] > 0


# --- the legacy completions API -----------------------------------------------------------------


def test_legacy_model_on_openai_sends_one_request_with_every_prompt(runtime, openai_connection, emulator):
    prompts = ["Say one", "Say two", "Say three"]

    result = runtime.run(ACTION, openai_connection,
                         {"model": "gpt-3.5-turbo-instruct", "prompts": prompts, "max_tokens": 40})

    (request,) = emulator.requests
    assert request.path == "/v1/completions"
    assert request.json == {"model": "gpt-3.5-turbo-instruct", "prompt": prompts, "max_tokens": 40}
    assert [item["content"] for item in result["results"]] == [
        f" Emulated completion of: {prompt}" for prompt in prompts]
    assert all(item["error"] is None and item["usage"] is None for item in result["results"])
    totals = result["totals"]
    assert totals["succeeded"] == 3 and totals["total_tokens"] > 0
    OUTPUT.validate(result)


def test_completions_api_on_azure_is_chosen_by_the_api_input(runtime, azure_connection, emulator):
    result = runtime.run(ACTION, azure_connection,
                         {"model": "my-instruct", "prompts": ["first", "second"], "api": "completions"})

    (request,) = emulator.requests
    assert request.path == "/openai/deployments/my-instruct/completions"
    assert request.json == {"prompt": ["first", "second"]}  # no model, no invented max_tokens
    assert [item["prompt"] for item in result["results"]] == ["first", "second"]
    assert result["results"][1]["content"] == " Emulated completion of: second"


def test_a_legacy_name_on_azure_uses_chat_unless_api_says_otherwise(runtime, azure_connection, emulator):
    runtime.run(ACTION, azure_connection, {"model": "davinci-002", "prompts": ["x"]})

    assert emulator.requests[0].path.endswith("/chat/completions")


def test_a_failed_completions_request_fails_every_item(runtime, openai_connection, emulator):
    emulator.script(Fault.not_found(), times=None)

    result = runtime.run(ACTION, openai_connection, {"model": "text-davinci-003", "prompts": ["a", "b"]})

    assert [item["error"]["type"] for item in result["results"]] == ["not_found", "not_found"]
    assert result["totals"] == {"succeeded": 0, "failed": 2, "prompt_tokens": 0,
                                "completion_tokens": 0, "total_tokens": 0}
    assert emulator.request_count == 1
    OUTPUT.validate(result)


def test_choices_are_matched_to_prompts_by_index():
    response = Response(status=200, headers=CaseInsensitiveDict(), content=b"", request_id="req_1",
                        attempts=1, elapsed=0.0)
    answer = {"choices": [
        {"index": 2, "text": "third", "finish_reason": "stop"},
        {"index": 0, "text": "first", "finish_reason": "length"},
        {"index": 1, "text": "", "finish_reason": "content_filter"},
    ]}

    results = multiple.completion_results(answer, ["p0", "p1", "p2", "p3"], response)

    assert [item["content"] for item in results] == ["first", None, "third", None]
    assert results[0]["finish_reason"] == "length"
    assert results[1]["error"]["type"] == "content_filter"
    assert results[3]["error"]["type"] == "invalid_response"


@pytest.mark.parametrize("service, inputs", [
    ("openai", {"model": "gpt-3.5-turbo-instruct"}),
    ("azure", {"model": "gpt-4o-mini", "api": "completions"}),
])
def test_system_with_the_completions_api_is_refused(runtime, emulator, request, service, inputs):
    connection = request.getfixturevalue(f"{service}_connection")

    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, connection, {**inputs, "prompts": ["a"], "system": "Be brief."})

    assert [error["path"] for error in raised.value.errors] == ["system"]
    assert "system" in raised.value.errors[0]["message"]
    assert emulator.request_count == 0


# --- input validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("prompts, path", [
    ([], "prompts"),
    (["a", "b", "c", 42], "prompts/3"),
    (["a"] * (FORM.fields["prompts"]["maxItems"] + 1), "prompts"),
])
def test_invalid_prompts_are_refused_before_any_request(runtime, connection, emulator, prompts, path):
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, connection, {"prompts": prompts})

    assert [error["path"] for error in raised.value.errors] == [path]
    assert emulator.request_count == 0


# --- the batch machinery ------------------------------------------------------------------------


def test_a_rate_limit_pauses_every_worker_until_the_retry_after_moment():
    fake = FakeTime()
    pacer = AdaptivePacer(4, clock=fake.clock, sleep=fake.sleep)
    pacer.before_attempt()
    pacer.after_attempt(429, 2.5)
    assert pacer.limit == 2 and pacer.pauses == 1

    pacer.before_attempt()  # stands for any other worker: it waits too

    assert sum(fake.sleeps) == pytest.approx(2.5)
    pacer.after_attempt(200, None)
    pacer.before_attempt()
    assert sum(fake.sleeps) == pytest.approx(2.5)  # the pause is over for everyone


def test_a_rate_limit_without_a_hint_pauses_for_a_short_backoff():
    fake = FakeTime()
    pacer = AdaptivePacer(2, clock=fake.clock, sleep=fake.sleep)
    pacer.before_attempt()
    pacer.after_attempt(429, None)
    pacer.before_attempt()

    assert sum(fake.sleeps) == pytest.approx(INITIAL_RETRY_DELAY)


def test_the_limit_halves_once_per_burst_then_grows_back_by_one():
    fake = FakeTime()
    pacer = AdaptivePacer(8, clock=fake.clock, sleep=fake.sleep)
    all_in_flight = threading.Barrier(3)

    def rate_limited_worker() -> None:
        pacer.before_attempt()
        all_in_flight.wait(timeout=5)
        pacer.after_attempt(429, 1.0)

    workers = [threading.Thread(target=rate_limited_worker) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=5)
    assert pacer.limit == 4  # three 429s of attempts started together are one signal

    for expected in (2, 1, 1):
        pacer.before_attempt()
        pacer.after_attempt(429, 1.0)
        assert pacer.limit == expected
    for expected in (1, 2, 2, 2, 2, 3):
        pacer.before_attempt()
        pacer.after_attempt(200, None)
        assert pacer.limit == expected
    assert pacer.lowest_limit == 1


def test_callers_wait_while_the_limit_is_in_flight():
    pacer = AdaptivePacer(1)
    pacer.before_attempt()
    admitted = threading.Event()

    def second_caller() -> None:
        pacer.before_attempt()
        admitted.set()

    caller = threading.Thread(target=second_caller)
    caller.start()
    assert wait_until(lambda: pacer.waiting == 1)
    assert not admitted.is_set()

    pacer.after_attempt(200, None)

    assert admitted.wait(timeout=5)
    caller.join(timeout=5)
    pacer.after_attempt(200, None)


def test_map_in_order_keeps_order_and_every_outcome():
    threads = set()

    def work(item: int) -> int:
        threads.add(threading.current_thread().name)
        if item == 3:
            raise ValueError("three")
        return item * 10

    outcomes = map_in_order(list(range(6)), work, max_concurrency=64)

    assert [result for result, _ in outcomes] == [0, 10, 20, None, 40, 50]
    assert isinstance(outcomes[3][1], ValueError)
    assert len(threads) <= 6


def test_map_in_order_can_skip_what_was_not_started_after_a_failure():
    def work(item: int) -> int:
        if item == 1:
            raise ValueError("one")
        return item

    outcomes = map_in_order([0, 1, 2], work, max_concurrency=1, stop_on_error=True)

    assert outcomes[0] == (0, None)
    assert isinstance(outcomes[1][1], ValueError)
    assert isinstance(outcomes[2][1], Skipped)


def test_total_usage_ignores_missing_counts():
    assert total_usage([{"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}, None, {}]) == {
        "prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
