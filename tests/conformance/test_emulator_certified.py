"""The emulator is certified against the official specs: `prism proxy --errors` stands in front of it,
and every route the connector uses, driven by the connector's own actions, answers without a
single violation, for success answers and for every error answer the connector handles.

Chain: connector -> recording proxy (keeps Prism's verdicts) -> `prism proxy --errors` (validates
the request, forwards it, validates the emulator's answer; a breaking answer becomes a 500 listing
the violations) -> emulator. The OpenAI spec declares no error answers for most operations, so
Prism cannot judge those; their bodies are checked here against the spec's own `ErrorResponse`
schema instead.

Azure's v1 API is certified on the v1 GA spec, its image generation on the v1 preview spec, and
the legacy completions a v1 connection sends to the dated route on the 2024-10-21 spec (the same
routing as the request conformance tests). Not certified: the audio routes (the emulator has none
and no action uses them) and the dated /openai/models list (no spec here describes it).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from jsonschema import Draft202012Validator

import prism_support
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.errors import ContentFilterError
from prism_support import PrismServer
from test_actions_conformance import (CASES, CONNECTIONS, RecordingProxy, azure_connection, azure_spec_router,
                                      azure_v1_connection, openai_connection, run_step)

pytestmark = pytest.mark.prism

EMULATOR_KEY = "emulator-key-certified-0001"
NOT_EMULATED = {("azure", "raw_request", "every-option-multipart")}  # audio: not an emulator route


@pytest.fixture(scope="module")
def certified(prism_executable, openai_prism_spec, azure_prism_spec, azure_v1_prism_spec,
              azure_v1_preview_prism_spec) -> Iterator[Tuple[Emulator, Dict[str, Any]]]:
    with Emulator(api_key=EMULATOR_KEY) as emulator:
        with PrismServer.proxy(openai_prism_spec, emulator.url, binary=prism_executable) as openai_proxy, \
                PrismServer.proxy(azure_prism_spec, emulator.url, binary=prism_executable) as azure_proxy, \
                PrismServer.proxy(azure_v1_prism_spec, emulator.url, binary=prism_executable) as v1_proxy, \
                PrismServer.proxy(azure_v1_preview_prism_spec, emulator.url, binary=prism_executable) as preview_proxy, \
                RecordingProxy(openai_proxy.url) as openai_judge, RecordingProxy(azure_proxy.url) as azure_judge, \
                RecordingProxy(azure_spec_router(azure_proxy, v1_proxy, preview_proxy)) as v1_judge:
            yield emulator, {"openai": openai_judge, "azure": azure_judge, "azure-v1": v1_judge}


@pytest.fixture
def judges(certified) -> Dict[str, RecordingProxy]:
    emulator, judges = certified
    emulator.reset()
    for judge in judges.values():
        judge.reset()
    yield judges
    emulator.reset()


@pytest.fixture(scope="module")
def openai_error_schema() -> Draft202012Validator:
    spec = prism_support.load_spec(prism_support.spec_path(prism_support.OPENAI_SPEC_FILE))
    schemas = spec["components"]["schemas"]
    error_response = json.loads(json.dumps(schemas["ErrorResponse"]))
    assert error_response["properties"]["error"] == {"$ref": "#/components/schemas/Error"}
    error_response["properties"]["error"] = schemas["Error"]
    return Draft202012Validator(error_response)


UNDECLARED_STATUS = "response: Unable to match the returned status code with those defined in the document"


def certify(exchanges: List[Dict[str, Any]], openai_error_schema: Draft202012Validator, service: str) -> None:
    assert exchanges, "nothing reached the emulator"
    for exchange in exchanges:
        found = exchange["all_violations"]
        if service == "openai" and exchange["status"] >= 400:
            # The OpenAI spec declares only its 200 (and, for completions, a 429) answers, so
            # Prism can only say it has no schema for the others; the body is checked below.
            found = [violation for violation in found if not violation.startswith(UNDECLARED_STATUS)]
        # With --errors, any violation (request or answer) is listed; none is allowed.
        assert found == [], (exchange["method"], exchange["path"], exchange["status"], found)
        if service == "openai" and exchange["status"] >= 400:
            body = json.loads(exchange["response_body"])
            errors = [error.message for error in openai_error_schema.iter_errors(body)]
            assert errors == [], (exchange["path"], body, errors)


def case_ids() -> List[Any]:
    return [pytest.param(*key, id="-".join(key)) for key in CASES if key not in NOT_EMULATED]


@pytest.mark.parametrize("service, action, case", case_ids())
def test_every_route_the_actions_use_answers_within_the_spec(service, action, case, judges, quick_runtime,
                                                             openai_error_schema):
    judge = judges[service]
    result, error = run_step(quick_runtime, action, CONNECTIONS[service](judge.url, EMULATOR_KEY),
                             CASES[service, action, case])
    certify(judge.exchanges, openai_error_schema, service)
    assert all(exchange["status"] < 400 for exchange in judge.exchanges)
    # And the connector can use every answer the emulator gives.
    assert error is None, repr(error)
    if action == "create_multiple_chat_completions":
        assert all(item["error"] is None for item in result["results"]), result["results"]


def test_the_openai_file_and_model_routes_answer_within_the_spec(judges, quick_runtime, openai_error_schema):
    judge = judges["openai"]
    connection = openai_connection(judge.url, EMULATOR_KEY)
    uploaded, error = run_step(quick_runtime, "raw_request", connection, {
        "url": "/v1/files", "method": "POST", "form_data": {"purpose": "batch"},
        "file_data": {"file": '{"custom_id": "1"}\n'}, "file_data_file_names": {"file": "batch.jsonl"}})
    assert error is None
    file_id = uploaded["data"]["id"]
    for inputs in ({"url": "/v1/files"}, {"url": "/v1/files", "query_params": {"purpose": "batch"}},
                   {"url": f"/v1/files/{file_id}"}, {"url": "/v1/models"}, {"url": "/v1/models/gpt-4o-mini"}):
        _, error = run_step(quick_runtime, "raw_request", connection, inputs)
        assert error is None, (inputs, error)
    assert len(judge.exchanges) == 6
    certify(judge.exchanges, openai_error_schema, "openai")


def test_the_azure_v1_models_list_answers_within_the_spec(judges, quick_runtime, openai_error_schema):
    """The picker's source on Azure's v1 API: the list and one model, with Azure's capability and
    lifecycle fields on top of the spec's required ones."""
    judge = judges["azure-v1"]
    connection = azure_v1_connection(judge.url, EMULATOR_KEY)
    listing, error = run_step(quick_runtime, "raw_request", connection, {"url": "/v1/models"})
    assert error is None
    assert {entry["id"]: entry["lifecycle_status"] for entry in listing["data"]["data"]}["gpt-5.1"] == (
        "generally-available")
    _, error = run_step(quick_runtime, "raw_request", connection, {"url": "/v1/models/gpt-image-2"})
    assert error is None
    certify(judge.exchanges, openai_error_schema, "azure-v1")
    assert len(judge.exchanges) == 2


def test_file_content_comes_as_bytes_unlike_the_openai_spec(judges, quick_runtime):
    """Where the spec and the service differ: the spec declares a file's content as a JSON
    string, the service sends the file's bytes (openai-python reads `files.content()` as binary).
    The emulator sends bytes, as the service does."""
    judge = judges["openai"]
    connection = openai_connection(judge.url, EMULATOR_KEY)
    uploaded, _ = run_step(quick_runtime, "raw_request", connection, {
        "url": "/v1/files", "method": "POST", "form_data": {"purpose": "batch"}, "file_data": {"file": "line\n"}})
    judge.reset()
    run_step(quick_runtime, "raw_request", connection,
             {"url": f"/v1/files/{uploaded['data']['id']}/content", "response_type": "binary"})
    [exchange] = judge.exchanges
    assert exchange["status"] == 500
    assert len(exchange["all_violations"]) == 1 and "application/json" in exchange["all_violations"][0]


FAULTS = [
    ("429-retry-after-ms", Fault.rate_limit(retry_after_ms=5)),
    ("429-retry-after", Fault.rate_limit(retry_after=1)),
    ("insufficient-quota", Fault.insufficient_quota()),
    ("401", Fault.unauthorized()),
    ("404", Fault.not_found()),
    ("400", Fault.bad_request("This request is refused.", param="messages", code="invalid_value")),
    ("500", Fault.status(500)),
    ("502", Fault.status(502)),
    ("503", Fault.status(503)),
    ("content-filter-prompt", Fault.content_filter_prompt(spec_shape=True)),
    ("content-filter-output", Fault.content_filter_output()),
]


FAULT_CASES = [
    pytest.param(name, fault, action, service, id=f"{service}-{action}-{name}")
    for name, fault in FAULTS for action in ("create_chat_completion", "create_image")
    for service in ("azure", "openai", "azure-v1")
    # A filtered output is a chat answer's finish_reason (images have no choices); the prompt
    # filter's 400 content_filter is Azure's (OpenAI has no such answer).
    if not (action == "create_image" and name == "content-filter-output")
    and not (service == "openai" and name == "content-filter-prompt")
]
# The dated 2024-10-21 API serves image generation for DALL-E 3 deployments only.
DATED_IMAGE_INPUTS = {"model": "my-image-deployment"}


@pytest.mark.parametrize("name, fault, action, service", FAULT_CASES)
def test_every_error_answer_the_connector_handles_is_within_the_spec(name, fault, action, service, certified, judges,
                                                                      quick_runtime, openai_error_schema):
    emulator, _ = certified
    emulator.script(fault, times=1)
    judge = judges[service]
    inputs = DATED_IMAGE_INPUTS if (service, action) == ("azure", "create_image") else {}
    run_step(quick_runtime, action, CONNECTIONS[service](judge.url, EMULATOR_KEY), inputs)
    certify(judge.exchanges, openai_error_schema, service)


@pytest.mark.parametrize("action", ["create_chat_completion", "create_image"])
def test_an_http_date_retry_after_is_within_the_azure_spec(action, certified, judges, quick_runtime,
                                                          openai_error_schema):
    emulator, _ = certified
    emulator.script(Fault.rate_limit(retry_after=1, retry_after_date=True), times=1)
    judge = judges["azure"]
    inputs = DATED_IMAGE_INPUTS if action == "create_image" else {}
    run_step(quick_runtime, action, azure_connection(judge.url, EMULATOR_KEY), inputs)
    certify(judge.exchanges, openai_error_schema, "azure")


def test_an_http_date_retry_after_is_outside_the_openai_spec(certified, judges, quick_runtime):
    """RFC 9110 allows Retry-After as an HTTP date, and gateways send one, so the client reads it
    and the emulator plays it on request; the OpenAI spec's 429 declares integer seconds only."""
    emulator, _ = certified
    emulator.script(Fault.rate_limit(retry_after=1, retry_after_date=True), times=1)
    judge = judges["openai"]
    run_step(quick_runtime, "create_chat_completion", openai_connection(judge.url, EMULATOR_KEY), {})
    first = judge.exchanges[0]
    assert first["all_violations"] == ["response.header.retry-after: Response header parameter retry-after "
                                       "must be integer"]


def test_the_live_content_filter_shape_is_outside_the_azure_spec(certified, judges, quick_runtime):
    """Where the service is looser than its spec: the live service answers a filtered prompt with
    `"type": null` and `innererror`/`content_filter_result` (api-notes section 6), the spec wants a
    string `type` (and spells `inner_error`/`content_filter_results`). The emulator plays the live
    shape by default and the spec shape on request; the connector reads both."""
    emulator, _ = certified
    judge = judges["azure"]
    connection = azure_connection(judge.url, EMULATOR_KEY)
    emulator.script(Fault.content_filter_prompt(), times=None)
    _, error = run_step(quick_runtime, "create_chat_completion", connection, {})
    first = judge.exchanges[0]
    assert first["status"] == 500
    assert first["all_violations"] == ["response.body.error.type: Response body property error.type must be string"]
    emulator.reset()
    judge.reset()
    # The same refusal in the spec's shape conforms, and the connector types both alike.
    emulator.script(Fault.content_filter_prompt(spec_shape=True), times=1)
    _, error = run_step(quick_runtime, "create_chat_completion", connection, {})
    assert judge.exchanges[0]["status"] == 400 and judge.exchanges[0]["all_violations"] == []
    assert isinstance(error, ContentFilterError) and error.details["content_filter_results"]


def test_negative_control_a_non_conforming_emulator_answer_is_caught(certified, judges, quick_runtime):
    emulator, _ = certified
    judge = judges["azure"]
    emulator.script(Fault.missing_choices(), times=1)
    run_step(quick_runtime, "create_chat_completion", azure_connection(judge.url, EMULATOR_KEY), {})
    first = judge.exchanges[0]
    assert first["status"] == 500
    assert any("choices" in violation for violation in first["all_violations"]), first["all_violations"]
