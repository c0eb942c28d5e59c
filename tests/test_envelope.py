"""The envelope: plain JSON either way, the typed error rebuilt from it, the engine-level retry
verdict for every error type, and a split fan-out whose merged steps equal one step."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, List

import pytest

from azure_openai_connector import envelope, errors
from azure_openai_connector.emulator import Fault

from test_error_transport import CLASSES, sample_error

PROMPTS = [f"fan-out prompt {number}" for number in range(7)]
FILTERED_PROMPT = PROMPTS[4]

# The engine-level verdict for every error type; a new type must be added here to be decided.
RETRIED_TYPES = {"rate_limit", "server_error", "connection_error", "timeout", "batch_not_finished"}
NOT_RETRIED_TYPES = {"connector_error", "invalid_input", "api_error", "bad_request", "authentication",
                     "permission_denied", "not_found", "quota_exceeded", "content_filter",
                     "invalid_response", "redirect_not_followed", "manifest_error", "not_processed",
                     "unsupported_parameter", "entra_token", "batch_wait_exhausted"}


def test_a_success_is_wrapped_as_plain_json(emulator, azure_connection, runtime):
    inputs = {"messages": [{"role": "user", "content": "wrap me"}]}
    wrapped = envelope.run_enveloped("create_chat_completion", azure_connection, inputs, runtime=runtime)
    assert sorted(wrapped) == ["ok", "result"]
    assert wrapped["ok"] is True
    assert wrapped["result"]["id"] == "chatcmpl-emu000000000001"
    assert json.loads(json.dumps(wrapped)) == wrapped
    assert envelope.unwrap(wrapped)["content"] == "Emulated reply to: wrap me"
    assert envelope.error_of(wrapped) is None
    assert envelope.retry_decision(wrapped) == (False, None)


def test_run_enveloped_without_a_runtime_runs_as_a_host_does(emulator, azure_connection):
    wrapped = envelope.run_enveloped("create_chat_completion", azure_connection,
                                     {"messages": [{"role": "user", "content": "host"}]})
    assert wrapped["ok"] is True
    assert wrapped["result"]["content"] == "Emulated reply to: host"


def test_a_failure_carries_the_typed_error_across_json(emulator, azure_connection, runtime):
    emulator.script(Fault.rate_limit(retry_after=7), times=None)
    wrapped = envelope.run_enveloped("create_chat_completion", azure_connection, {}, runtime=runtime)
    carried = json.loads(json.dumps(wrapped))
    assert carried["ok"] is False
    assert carried["error"]["type"] == "rate_limit"
    with pytest.raises(errors.RateLimitError) as raised:
        envelope.unwrap(carried)
    error = raised.value
    assert (error.status, error.code, error.retry_after, error.attempts) == (429, "429", 7.0, 3)
    assert error.request_id.startswith("req_")
    assert error.to_dict() == carried["error"]
    assert envelope.retry_decision(carried) == (True, 7.0)


def test_invalid_input_is_wrapped_with_every_path_and_never_retried(emulator, azure_connection, runtime):
    wrapped = envelope.run_enveloped("create_chat_completion", azure_connection,
                                     {"temperature": 9, "messages": [{"role": "wizard", "content": "x"}]},
                                     runtime=runtime)
    assert wrapped == {"ok": False, "error": {
        "type": "invalid_input",
        "message": "Invalid inputs: messages/0/role: 'wizard' is not one of ['system', 'developer', "
                   "'user', 'assistant', 'tool']; temperature: 9 is greater than the maximum of 2",
        "errors": [{"path": "messages/0/role",
                    "message": "'wizard' is not one of ['system', 'developer', 'user', 'assistant', 'tool']"},
                   {"path": "temperature", "message": "9 is greater than the maximum of 2"}]}}
    assert envelope.retry_decision(wrapped) == (False, None)
    assert emulator.request_count == 0


def test_every_error_type_has_a_retry_verdict():
    assert {error_class.kind for error_class in CLASSES} == RETRIED_TYPES | NOT_RETRIED_TYPES


@pytest.mark.parametrize("error_class", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_retry_decision_for_every_error_type_in_every_form(error_class):
    error = sample_error(error_class)
    if error_class.kind in RETRIED_TYPES:
        expected = (True, 1.5 if error_class is errors.RateLimitError else None)
    else:
        expected = (False, None)
    assert envelope.retry_decision(error) == expected
    assert envelope.retry_decision(error.to_dict()) == expected
    assert envelope.retry_decision(envelope.failure(error)) == expected


@pytest.mark.parametrize("status, retried", [(408, True), (409, True), (418, False), (499, False)])
def test_a_plain_api_error_is_retried_on_timeout_and_conflict_statuses(status, retried):
    error = errors.ApiError("odd status", status=status)
    assert envelope.retry_decision(error) == (retried, None)


def test_not_an_envelope_is_refused():
    for not_envelope in ({"ok": "yes"}, {"ok": True}, {"ok": False, "result": 1}, ["ok"]):
        with pytest.raises(ValueError, match="not an envelope"):
            envelope.unwrap(not_envelope)


# --- split and merge -------------------------------------------------------------------------------


def test_split_keeps_every_input_and_the_prompt_order_in_even_steps():
    prompts = [f"p{number}" for number in range(1001)]
    steps = envelope.split_fan_out({"model": "gpt-4o-mini", "prompts": prompts, "temperature": 0.5},
                                   max_prompts=500)
    assert [len(step["prompts"]) for step in steps] == [334, 334, 333]
    assert [prompt for step in steps for prompt in step["prompts"]] == prompts
    assert all(step["model"] == "gpt-4o-mini" and step["temperature"] == 0.5 for step in steps)


def test_split_defaults_to_the_manifests_limit_per_step():
    steps = envelope.split_fan_out({"prompts": [f"p{number}" for number in range(2000)]})
    assert [len(step["prompts"]) for step in steps] == [500, 500, 500, 500]
    assert envelope.max_prompts_per_step() == 500


def test_a_small_fan_out_is_one_step_with_the_same_inputs():
    inputs = {"prompts": ["only one"], "max_concurrency": 2}
    assert envelope.split_fan_out(inputs) == [inputs]
    assert envelope.split_fan_out({}) == [{}]


@pytest.mark.parametrize("max_prompts", [0, 501, 2.5, True, "10"])
def test_split_refuses_a_step_size_no_step_takes(max_prompts):
    with pytest.raises(ValueError, match="max_prompts must be an integer from 1 to 500"):
        envelope.split_fan_out({"prompts": ["a", "b"]}, max_prompts=max_prompts)


def test_split_refuses_bad_inputs_at_their_path_in_the_whole_list():
    prompts = [f"p{number}" for number in range(2000)]
    prompts[1503] = ""
    with pytest.raises(errors.InputValidationError) as raised:
        envelope.split_fan_out({"prompts": prompts, "temperature": 9})
    assert raised.value.errors == [
        {"path": "temperature", "message": "9 is greater than the maximum of 2"},
        {"path": "prompts/1503", "message": "is 0 characters long; at least 1 required"},
    ]


def normalized(result: Dict[str, Any]) -> Dict[str, Any]:
    """The result without what differs between two runs of the same prompts: request ids."""
    result = copy.deepcopy(result)
    for item in result["results"]:
        if item["error"] is not None:
            item["error"]["request_id"] = "req_*"
    return result


def run_split(runtime: Any, connection: Dict[str, Any], inputs: Dict[str, Any],
              max_prompts: int) -> List[Dict[str, Any]]:
    steps = envelope.split_fan_out(inputs, max_prompts=max_prompts)
    return [envelope.run_enveloped("create_multiple_chat_completions", connection, step, runtime=runtime)
            for step in steps]


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_the_merge_of_split_runs_equals_one_run(api, emulator, connection, runtime):
    inputs = {"prompts": PROMPTS, "api": api, "max_tokens": 20,
              "model": "gpt-4o-mini" if api == "chat" else "gpt-3.5-turbo-instruct"}
    if api == "chat":  # one prompt fails, in both runs, at the same place
        emulator.script(Fault.content_filter_prompt(), times=None, match=FILTERED_PROMPT)
    whole = runtime.run("create_multiple_chat_completions", connection, inputs)
    envelopes = run_split(runtime, connection, inputs, max_prompts=3)
    assert [len(e["result"]["results"]) for e in envelopes] == [3, 2, 2]
    merged = envelope.merge_enveloped(envelopes)
    assert merged["ok"] is True
    assert merged["result"] == envelope.merge_fan_out([e["result"] for e in envelopes])
    assert merged["result"]["totals"] == {
        name: sum(e["result"]["totals"][name] for e in envelopes) for name in whole["totals"]}
    if api == "completions":
        # One request per step, and the emulator rounds each answer's token estimate up: the
        # whole list in one request counts up to one token less per step than its parts.
        for name in ("completion_tokens", "total_tokens"):
            assert 0 <= merged["result"]["totals"][name] - whole["totals"][name] < len(envelopes)
            merged["result"]["totals"][name] = whole["totals"][name]
    assert normalized(merged["result"]) == normalized(whole)
    assert [item["index"] for item in merged["result"]["results"]] == list(range(len(PROMPTS)))
    if api == "chat":
        assert merged["result"]["totals"]["failed"] == 1
        assert merged["result"]["results"][4]["error"]["type"] == "content_filter"


def test_the_merge_of_one_step_is_that_step(emulator, azure_connection, runtime):
    [step] = run_split(runtime, azure_connection, {"prompts": PROMPTS[:2]}, max_prompts=500)
    assert envelope.merge_enveloped([step]) == step


def test_a_failed_step_fails_the_merged_fan_out_with_its_error(emulator, openai_connection, runtime):
    inputs = {"prompts": PROMPTS, "system": "be brief", "model": "gpt-3.5-turbo-instruct"}
    envelopes = run_split(runtime, openai_connection, inputs, max_prompts=4)
    merged = envelope.merge_enveloped(envelopes)
    assert merged == envelopes[0]
    assert merged["ok"] is False
    assert [problem["path"] for problem in merged["error"]["errors"]] == ["system"]
    with pytest.raises(ValueError, match="at least one step"):
        envelope.merge_fan_out([])
