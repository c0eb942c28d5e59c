"""Every request the Batch API actions send conforms to the official specs: the OpenAI spec for
files and batches, and Azure's v1 GA spec for the file upload (it has no batch routes yet).

Prism answers from the specs' examples, so the flow does not hold together (the example batch
names files Prism has never seen): each action is judged on what it sends, not on the answers.
Judged through the recording proxy of test_actions_conformance (Prism's verdict per request).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from azure_openai_connector.emulator import Emulator
from azure_openai_connector.http import DEFAULT_MAX_RETRIES
from azure_openai_connector.manifest import load_manifest
from prism_support import PrismServer
from test_actions_conformance import PRISM_KEY, RecordingProxy, openai_connection, run_step

pytestmark = pytest.mark.prism

MANIFEST = load_manifest()
BATCH_ACTIONS = ("submit_batch", "get_batch_status", "get_batch_results", "cancel_batch")
SUBMIT_EVERY_OPTION = {
    "model": "gpt-4o", "prompts": ["One?", "Two?", "Three?"], "system": "Be brief.", "temperature": 0.3,
    "max_completion_tokens": 20, "response_format": "json_object", "metadata": {"job": "conformance"},
    "input_file_expiry_days": 14}
CASES: Dict[Tuple[str, str], Dict[str, Any]] = {
    ("submit_batch", "defaults"): {},
    ("submit_batch", "every-option"): SUBMIT_EVERY_OPTION,
    ("get_batch_status", "id"): {"batch_id": "batch_abc123"},
    ("get_batch_results", "id"): {"batch_id": "batch_abc123"},
    ("cancel_batch", "id"): {"batch_id": "batch_abc123"},
}
# (method, path) of each request, in order; later ones depend on Prism's example answers.
EXPECTED_FIRST_REQUESTS = {
    "submit_batch": [("POST", "/v1/files"), ("POST", "/v1/batches")],
    "get_batch_status": [("GET", "/v1/batches/batch_abc123")],
    "get_batch_results": [("GET", "/v1/batches/batch_abc123")],
    "cancel_batch": [("POST", "/v1/batches/batch_abc123/cancel")],
}


@pytest.fixture(scope="module")
def openai_judge(prism_openai: PrismServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(prism_openai.url) as judge:
        yield judge


@pytest.fixture(scope="module")
def azure_v1_judge(prism_azure_v1: PrismServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(prism_azure_v1.url) as judge:
        yield judge


def assert_conforms(exchanges: List[Dict[str, Any]]) -> None:
    assert exchanges, "nothing was sent"
    for exchange in exchanges:
        assert exchange["status"] != 422 and exchange["violations"] == [], (
            exchange["method"], exchange["path"], exchange["violations"], exchange["request_body"][:500])


@pytest.mark.parametrize("action, case", [pytest.param(*key, id="-".join(key)) for key in CASES])
def test_batch_requests_conform_to_the_openai_spec(action, case, openai_judge, quick_runtime):
    openai_judge.reset()
    run_step(quick_runtime, action, openai_connection(openai_judge.url), CASES[action, case])
    sent = list(openai_judge.exchanges)
    assert_conforms(sent)
    expected = EXPECTED_FIRST_REQUESTS[action]
    assert [(e["method"], e["path"]) for e in sent[:len(expected)]] == expected
    assert all(exchange["status"] < 400 for exchange in sent)


def test_the_file_upload_and_batch_create_carry_what_the_spec_requires(openai_judge, quick_runtime):
    openai_judge.reset()
    run_step(quick_runtime, "submit_batch", openai_connection(openai_judge.url), SUBMIT_EVERY_OPTION)
    upload, create = openai_judge.exchanges[:2]
    assert b'name="purpose"\r\n\r\nbatch\r\n' in upload["request_body"]
    assert b'name="file"; filename="batch_input.jsonl"' in upload["request_body"]
    body = json.loads(create["request_body"])
    assert body["endpoint"] == "/v1/chat/completions" and body["completion_window"] == "24h"


def test_the_every_option_case_sets_every_optional_input():
    fields = MANIFEST.action("submit_batch").inputs
    optional = {name for name in fields.fields if name not in fields.schema.get("required", ())}
    assert optional <= set(SUBMIT_EVERY_OPTION)
    assert not [name for name in optional if fields.is_default(name, SUBMIT_EVERY_OPTION[name])]
    for action in BATCH_ACTIONS[1:]:
        assert list(MANIFEST.action(action).inputs.fields) == ["batch_id"]


def test_negative_control_a_wrong_purpose_and_a_wrong_window_get_422(openai_judge, quick_runtime):
    openai_judge.reset()
    connection = openai_connection(openai_judge.url)
    run_step(quick_runtime, "raw_request", connection, {
        "url": "/v1/files", "method": "POST", "form_data": {"purpose": "batches"},
        "file_data": {"file": "{}\n"}, "file_data_file_names": {"file": "in.jsonl"}})
    run_step(quick_runtime, "raw_request", connection, {
        "url": "/v1/batches", "method": "POST",
        "data": {"input_file_id": "file-abc123", "endpoint": "/v1/chat/completions", "completion_window": "48h"}})
    upload, create = openai_judge.exchanges
    assert upload["status"] == 422 and any("purpose" in v for v in upload["violations"]), upload["violations"]
    assert create["status"] == 422 and any("completion_window" in v for v in create["violations"])


def test_the_azure_upload_conforms_to_the_v1_spec(azure_v1_judge, quick_runtime):
    """The v1 GA spec requires `expires_after` on an upload. It has no batch routes yet, and its
    example file is never `processed`, so the action stops at looking the file up again (bounded)."""
    azure_v1_judge.reset()
    connection = {"api_key": PRISM_KEY, "organization": "contoso", "endpoint": azure_v1_judge.url,
                  "api_version": "v1"}
    _, error = run_step(quick_runtime, "submit_batch", connection, SUBMIT_EVERY_OPTION)
    sent = list(azure_v1_judge.exchanges)
    assert (sent[0]["method"], sent[0]["path"], sent[0]["status"]) == ("POST", "/openai/v1/files", 200)
    assert_conforms(sent)
    assert {(e["method"], e["path"].rsplit("/", 1)[0]) for e in sent[1:]} <= {("GET", "/openai/v1/files")}
    assert error is not None


def test_negative_control_an_azure_upload_without_expiry_gets_422(azure_v1_judge, quick_runtime):
    azure_v1_judge.reset()
    connection = {"api_key": PRISM_KEY, "organization": "contoso", "endpoint": azure_v1_judge.url,
                  "api_version": "v1"}
    run_step(quick_runtime, "raw_request", connection, {
        "url": "/v1/files", "method": "POST", "form_data": {"purpose": "batch"},
        "file_data": {"file": "{}\n"}, "file_data_file_names": {"file": "in.jsonl"}})
    [upload] = azure_v1_judge.exchanges
    assert upload["status"] == 422 and any("expires_after" in v for v in upload["violations"]), upload["violations"]


# --- the emulator's batch answers, judged by `prism proxy --errors` -------------------------------------


@pytest.fixture(scope="module")
def certified_openai(prism_executable, openai_prism_spec) -> Iterator[Tuple[Emulator, RecordingProxy]]:
    with Emulator(api_key=PRISM_KEY) as emulator:
        with PrismServer.proxy(openai_prism_spec, emulator.url, binary=prism_executable) as proxy, \
                RecordingProxy(proxy.url) as judge:
            yield emulator, judge


@pytest.mark.slow
def test_the_emulators_batch_answers_are_within_the_openai_spec(certified_openai, quick_runtime):
    """Submit, status and cancel through Prism's proxy: requests and the emulator's answers both
    checked. Results stop at the one known difference: a file's content comes as bytes where the
    spec declares a JSON string (see test_emulator_certified), which the proxy turns into a 500."""
    _, judge = certified_openai
    judge.reset()
    connection = openai_connection(judge.url)
    submitted, error = run_step(quick_runtime, "submit_batch", connection,
                                {"prompts": ["a", "b [emulator:fail-400]", "c"], "metadata": {"emulator_polls": "3"}})
    assert error is None, error
    batch = {"batch_id": submitted["batch_id"]}
    for action in ("get_batch_status", "cancel_batch", "get_batch_status"):
        _, error = run_step(quick_runtime, action, connection, batch)
        assert error is None, (action, error)
    assert [(e["method"], e["status"], e["all_violations"]) for e in judge.exchanges] == [
        ("POST", 200, []), ("POST", 200, []), ("GET", 200, []), ("POST", 200, []), ("GET", 200, [])]
    judge.reset()
    _, error = run_step(quick_runtime, "get_batch_results", connection, batch)
    fetched, *contents = judge.exchanges  # a 500 is retried: every attempt gets the same verdict
    assert (fetched["path"], fetched["status"], fetched["all_violations"]) == (
        f"/v1/batches/{submitted['batch_id']}", 200, [])
    assert len(contents) == 1 + DEFAULT_MAX_RETRIES
    for content in contents:
        assert content["path"].endswith("/content") and content["status"] == 500
        assert len(content["all_violations"]) == 1 and "application/json" in content["all_violations"][0]
    assert error is not None and error.to_dict()["status"] == 500
