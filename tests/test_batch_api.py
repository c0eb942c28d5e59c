"""The Batch API actions against the emulator: submit, poll to the end, and map results back in
order; expiry and cancel; the service's per-file rules refused before anything is uploaded."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from azure_openai_connector.emulator import Emulator
from azure_openai_connector.emulator.batches import EXAMPLE_BATCH_ID, EXAMPLE_PROMPTS
from azure_openai_connector.errors import BatchNotFinishedError, InputValidationError, NotFoundError
from azure_openai_connector.runtime import Runtime

from support import API_KEY

MAX_POLLS = 10  # every loop below is bounded; the emulator finishes a job in at most 4 fetches here
FAILED_LINES = {17: ("[emulator:fail-400]", "bad_request", 400), 500: ("[emulator:fail-500]", "server_error", 500),
                998: ("[emulator:fail-400]", "bad_request", 400)}


@pytest.fixture(params=["azure-v1", "openai"])
def service(request: pytest.FixtureRequest) -> str:
    return request.param


def connection_for(service: str, emulator: Emulator) -> Dict[str, Any]:
    if service == "openai":
        return {"api_key": API_KEY, "is_openai_key": True, "endpoint": emulator.url + "/v1"}
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": emulator.url}
    if service == "azure-v1":
        connection["api_version"] = "v1"
    else:
        connection["api_version"] = "2024-10-21"  # the dated API (v1 is the default)
    return connection


def poll_until_finished(runtime: Runtime, connection: Dict[str, Any], batch_id: str) -> List[Dict[str, Any]]:
    seen = []
    for _ in range(MAX_POLLS):
        status = runtime.run("get_batch_status", connection, {"batch_id": batch_id})
        seen.append(status)
        if status["finished"]:
            return seen
    raise AssertionError(f"not finished after {MAX_POLLS} polls: {[s['status'] for s in seen]}")


def file_lines(emulator: Emulator, file_id: str) -> List[Dict[str, Any]]:
    data = emulator._service.files.get(file_id).data
    return [json.loads(text) for text in data.decode("utf-8").splitlines()]


@pytest.mark.slow
def test_a_thousand_prompts_come_back_in_order_with_three_failed(service, emulator, runtime):
    connection = connection_for(service, emulator)
    prompts = [f"Prompt number {index}" for index in range(1000)]
    for index, (marker, _, _) in FAILED_LINES.items():
        prompts[index] += f" {marker}"
    submitted = runtime.run("submit_batch", connection, {
        "model": "gpt-4o-mini", "prompts": prompts, "metadata": {"emulator_polls": "4", "job": "nightly"}})
    assert submitted["status"] == "validating" and submitted["requests"] == 1000
    assert submitted["model"] == "gpt-4o-mini"

    polls = poll_until_finished(runtime, connection, submitted["batch_id"])
    assert [(p["status"], p["progress"], p["finished"]) for p in polls] == [
        ("in_progress", 0.25, False), ("in_progress", 0.5, False), ("finalizing", 0.75, False), ("completed", 1.0, True)]
    assert polls[-1]["request_counts"] == {"total": 1000, "completed": 997, "failed": 3}
    # The service writes its answers in its own order: only custom_id ties them to the prompts.
    output_ids = [line["custom_id"] for line in file_lines(emulator, polls[-1]["output_file_id"])]
    assert sorted(output_ids) != output_ids and len(output_ids) == 997

    answer = runtime.run("get_batch_results", connection, {"batch_id": submitted["batch_id"]})
    assert answer["model"] == "gpt-4o-mini"
    assert [item["index"] for item in answer["results"]] == list(range(1000))
    assert [item["prompt"] for item in answer["results"]] == prompts
    for item in answer["results"]:
        if item["index"] in FAILED_LINES:
            _, kind, status = FAILED_LINES[item["index"]]
            assert (item["content"], item["usage"], item["error"]["type"], item["error"]["status"]) == (
                None, None, kind, status)
            assert item["error"]["request_id"] == f"req_batch{1:06d}{item['index']:07d}"
        else:
            assert item["error"] is None
            assert item["content"] == f"Emulated reply to: {item['prompt']}" and item["finish_reason"] == "stop"
    usages = [item["usage"] for item in answer["results"] if item["usage"]]
    assert answer["totals"] == {"succeeded": 997, "failed": 3,
                                "prompt_tokens": sum(u["prompt_tokens"] for u in usages),
                                "completion_tokens": sum(u["completion_tokens"] for u in usages),
                                "total_tokens": sum(u["total_tokens"] for u in usages)}


def test_results_have_exactly_the_shape_of_create_multiple_chat_completions(service, emulator, runtime):
    connection = connection_for(service, emulator)
    live = runtime.run("create_multiple_chat_completions", connection, {"system": "Be brief."})
    submitted = runtime.run("submit_batch", connection, {"system": "Be brief."})  # the same default prompts
    poll_until_finished(runtime, connection, submitted["batch_id"])
    assert runtime.run("get_batch_results", connection, {"batch_id": submitted["batch_id"]}) == live


@pytest.mark.parametrize("service, files_path, batches_path, query", [
    ("azure-v1", "/openai/v1/files", "/openai/v1/batches", {}),
    ("azure", "/openai/files", "/openai/batches", {"api-version": "2024-10-21"}),
    ("openai", "/v1/files", "/v1/batches", {}),
])
def test_what_submit_sends_on_each_route(service, files_path, batches_path, query, emulator, runtime):
    connection = connection_for(service, emulator)
    submitted = runtime.run("submit_batch", connection, {
        "model": "my-batch-deployment", "prompts": ["One?", "Two?"], "system": "Be brief.", "temperature": 0.5,
        "max_completion_tokens": 50, "response_format": "json_object", "metadata": {"job": "j1"},
        "input_file_expiry_days": 14})
    requests = emulator.requests
    upload, create = requests[0], requests[-1]
    assert (upload.method, upload.path, upload.query) == ("POST", files_path, query)
    azure = service != "openai"
    expected_form = {"purpose": "batch"}
    if azure:
        expected_form.update({"expires_after.anchor": "created_at", "expires_after.seconds": "1209600",
                              "expires_after": '{"anchor": "created_at", "seconds": 1209600}'})
    assert upload.form == expected_form
    [part] = upload.files
    assert (part["field"], part["filename"], part["content_type"]) == ("file", "batch_input.jsonl", "application/jsonl")
    lines = part["data"].decode("utf-8").splitlines(keepends=True)
    assert json.loads(lines[1]) == {
        "custom_id": "000001", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "my-batch-deployment",
                 "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Two?"}],
                 "temperature": 0.5, "max_completion_tokens": 50, "response_format": {"type": "json_object"}}}
    assert all(line.endswith("\n") for line in lines) and len(lines) == 2
    if azure:
        # Azure: the upload is pending at first; the action looks again before starting the batch.
        assert [(r.method, r.path) for r in requests[1:-1]] == [("GET", f"{files_path}/{submitted['input_file_id']}")]
        stored = emulator._service.files.get(submitted["input_file_id"])
        assert stored.expires_at == stored.created_at + 14 * 86400
    else:
        assert len(requests) == 2
    assert (create.method, create.path, create.query) == ("POST", batches_path, query)
    assert create.json == {"input_file_id": submitted["input_file_id"],
                           "endpoint": "/v1/chat/completions" if service == "openai" else "/chat/completions",
                           "completion_window": "24h", "metadata": {"job": "j1"}}


def test_defaults_leave_out_what_the_service_defaults(emulator, runtime, openai_connection):
    runtime.run("submit_batch", openai_connection, {"prompts": ["Hi"]})
    line = json.loads(emulator.requests[0].files[0]["data"])
    assert line["body"] == {"model": "gpt-5.1", "messages": [{"role": "user", "content": "Hi"}]}


def test_an_expired_batch_marks_what_never_ran_not_processed(service, emulator, runtime):
    connection = connection_for(service, emulator)
    prompts = [f"p{index}" for index in range(10)]
    submitted = runtime.run("submit_batch", connection, {"prompts": prompts,
                                                         "metadata": {"emulator_outcome": "expire"}})
    polls = poll_until_finished(runtime, connection, submitted["batch_id"])
    assert (polls[-1]["status"], polls[-1]["finished"]) == ("expired", True)
    answer = runtime.run("get_batch_results", connection, {"batch_id": submitted["batch_id"]})
    assert [item["error"] is None for item in answer["results"]] == [True] * 5 + [False] * 5
    for item in answer["results"][5:]:
        assert item["prompt"] == f"p{item['index']}" and item["content"] is None
        assert {key: item["error"][key] for key in ("type", "code", "status")} == {
            "type": "not_processed", "code": "batch_expired", "status": None}
        assert item["error"]["message"].startswith("Not processed: ")
    assert (answer["totals"]["succeeded"], answer["totals"]["failed"]) == (5, 5)


def test_a_cancelled_batch_keeps_what_ran_and_marks_the_rest_not_processed(service, emulator, runtime):
    connection = connection_for(service, emulator)
    prompts = [f"p{index}" for index in range(8)]
    submitted = runtime.run("submit_batch", connection, {"prompts": prompts, "metadata": {"emulator_polls": "4"}})
    batch = {"batch_id": submitted["batch_id"]}
    assert runtime.run("get_batch_status", connection, batch)["request_counts"]["completed"] == 2
    cancelling = runtime.run("cancel_batch", connection, batch)
    assert (cancelling["status"], cancelling["finished"]) == ("cancelling", False)
    answer = runtime.run("get_batch_results", connection, batch)
    assert [item["error"] and item["error"]["code"] for item in answer["results"]] == [None] * 2 + ["batch_cancelled"] * 6
    assert runtime.run("get_batch_status", connection, batch)["status"] == "cancelled"


def test_results_before_the_end_are_refused_with_the_status(emulator, runtime, openai_connection):
    submitted = runtime.run("submit_batch", openai_connection, {"metadata": {"emulator_polls": "3"}})
    with pytest.raises(BatchNotFinishedError) as raised:
        runtime.run("get_batch_results", openai_connection, {"batch_id": submitted["batch_id"]})
    assert raised.value.code == "in_progress"
    assert raised.value.to_dict()["type"] == "batch_not_finished"
    assert submitted["batch_id"] in raised.value.message


def test_cancelling_a_finished_batch_reports_it_finished(emulator, runtime, connection):
    result = runtime.run("cancel_batch", connection, {"batch_id": EXAMPLE_BATCH_ID})
    assert (result["status"], result["finished"], result["progress"]) == ("completed", True, 1.0)


def test_the_example_batch_answers_without_a_submit(emulator, runtime, connection):
    answer = runtime.run("get_batch_results", connection, {"batch_id": EXAMPLE_BATCH_ID})
    assert [item["content"] for item in answer["results"]] == [f"Emulated reply to: {p}" for p in EXAMPLE_PROMPTS]


def test_an_unknown_batch_is_a_typed_not_found(emulator, runtime, connection):
    with pytest.raises(NotFoundError) as raised:
        runtime.run("get_batch_status", connection, {"batch_id": "batch_nope"})
    assert raised.value.status == 404 and raised.value.request_id


# --- the service's rules, refused before anything is sent ---------------------------------------------------


def test_openai_takes_at_most_50000_requests_per_batch(emulator, runtime, openai_connection):
    with pytest.raises(InputValidationError) as raised:
        runtime.run("submit_batch", openai_connection, {"prompts": ["x"] * 50_001})
    assert raised.value.errors == [{"path": "prompts", "message": "has 50001 prompts; a OpenAI batch takes at most "
                                                                  "50000: split it into several batches"}]
    assert emulator.request_count == 0


def test_azure_takes_at_most_100000_requests_per_batch(emulator, runtime, azure_connection):
    runtime.run("submit_batch", azure_connection, {"prompts": ["x"] * 50_001, "metadata": {"emulator_polls": "1"}})
    emulator.reset()
    with pytest.raises(InputValidationError) as raised:
        runtime.run("submit_batch", azure_connection, {"prompts": ["x"] * 100_001})
    assert [problem["path"] for problem in raised.value.errors] == ["prompts"]
    assert emulator.request_count == 0


@pytest.mark.slow
def test_an_input_file_over_200_mb_is_refused_before_upload(emulator, runtime, connection):
    # One 4 MB prompt (a million four-byte characters) shared 51 times: a 204 MB file.
    big = "\U0001F600" * 1_048_576
    with pytest.raises(InputValidationError) as raised:
        runtime.run("submit_batch", connection, {"prompts": [big] * 51})
    [problem] = raised.value.errors
    assert problem["path"] == "prompts" and "the most allowed is 209715200 (200 MB)" in problem["message"]
    assert emulator.request_count == 0


def test_no_byte_order_mark_reaches_the_file(emulator, runtime, azure_connection):
    """A prompt pasted with a BOM goes out escaped: Azure fails a file holding one (with a message
    about the deployment name), and the emulator does the same."""
    submitted = runtime.run("submit_batch", azure_connection, {"prompts": ["\ufeffHello", "Bye\ufeff"]})
    data = emulator.requests[0].files[0]["data"]
    assert b"\xef\xbb\xbf" not in data
    assert [json.loads(line)["body"]["messages"][0]["content"] for line in data.splitlines()] == ["\ufeffHello", "Bye\ufeff"]
    poll_until_finished(runtime, azure_connection, submitted["batch_id"])
    answer = runtime.run("get_batch_results", azure_connection, {"batch_id": submitted["batch_id"]})
    assert [item["prompt"] for item in answer["results"]] == ["\ufeffHello", "Bye\ufeff"]
    assert answer["totals"]["failed"] == 0
