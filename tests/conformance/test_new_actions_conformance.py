"""Create Response, Create Embeddings, Edit Image and gpt-image generation conform to the official
specs: the OpenAI spec for every one of them, Azure's v1 GA spec for responses and embeddings and
its preview spec for image generation (image edits are in the OpenAI spec only), with the
manifest's defaults and with every optional input set. Same judge as test_actions_conformance: a
recording proxy in front of `prism mock` keeps Prism's verdict on each request.

Two places where the OpenAI spec cannot judge what the API takes, each with a test that shows it:
a message with content parts (input_text, input_image...) is valid under two branches of the
spec's `oneOf` for input items, so the spec refuses every such message (the every-option case
sends text content); and the spec names the edit field `image` while several images go as
repeated `image[]` parts (openai-python's and Azure's spelling), which Prism reads as an unknown
field: the same request with the parts named `image` passes.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests

from azure_openai_connector import errors
from azure_openai_connector.manifest import load_manifest
from prism_support import PrismServer, violations
from test_actions_conformance import PRISM_KEY, RecordingProxy, openai_connection, run_step

pytestmark = pytest.mark.prism

MANIFEST = load_manifest()
SUN = MANIFEST.action("edit_image").inputs.default("images")[0]
JPEG = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 60).decode()
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"], "additionalProperties": False}, "strict": True}


def azure_v1_connection(url: str) -> Dict[str, Any]:
    return {"api_key": PRISM_KEY, "organization": "contoso", "endpoint": url, "api_version": "v1"}


ACTION_RESPONSE = "create_response"
CONNECTIONS = {"openai": openai_connection, "azure-v1": azure_v1_connection, "azure-v1-preview": azure_v1_connection}


@pytest.fixture(scope="module")
def judges(prism_openai: PrismServer, prism_azure_v1: PrismServer,
           prism_azure_v1_preview: PrismServer) -> Iterator[Dict[str, RecordingProxy]]:
    with RecordingProxy(prism_openai.url) as openai_judge, RecordingProxy(prism_azure_v1.url) as v1_judge, \
            RecordingProxy(prism_azure_v1_preview.url) as preview_judge:
        yield {"openai": openai_judge, "azure-v1": v1_judge, "azure-v1-preview": preview_judge}


CONTENT_PARTS = [{"type": "input_text", "text": "Describe this picture."},
                 {"type": "input_image", "image_url": SUN, "detail": "low"}]
RESPONSE_ALL = {
    "input": [{"role": "developer", "content": "Answer in JSON."},
              {"type": "message", "role": "user", "content": "Describe the weather."}],
    "instructions": "Be brief.", "previous_response_id": "resp_conformance1",
    "tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "name": "get_weather"},
    "text_format": "json_schema",
    "json_schema": {"name": "answer", "strict": True,
                    "schema": {"type": "object", "properties": {"text": {"type": "string"}},
                               "required": ["text"], "additionalProperties": False}},
    "reasoning_effort": "low", "reasoning_summary": "auto", "max_output_tokens": 256, "store": False,
    "metadata": {"run": "conformance"}, "timeout": 30,
}
# Sampling options go with a non-reasoning model, reasoning with a reasoning one (the family rules).
SAMPLING = {"model": "gpt-4.1", "input": "hi", "temperature": 0.5, "top_p": 0.9, "text_format": "json_object",
            "tools": [{"type": "web_search"}], "tool_choice": "required"}
BACKGROUND = {"input": "A long job.", "background": True, "timeout": 3, "cancel_on_timeout": True}
EMBEDDINGS_ALL = {"model": "text-embedding-3-large", "input": ["one", "two", "three"], "dimensions": 256,
                  "encoding_format": "float", "user": "user-1234", "max_concurrency": 2, "inputs_per_request": 2}
EMBEDDINGS_RAW = {"input": ["one"], "base64_output": True}
EDIT_ALL = {"model": "gpt-image-1.5", "prompt": "Add a boat", "images": [SUN, JPEG], "mask": SUN, "size": "1536x1024",
            "quality": "high", "background": "transparent", "output_format": "webp", "output_compression": 70,
            "input_fidelity": "high", "n": 2}

CASES: Dict[Tuple[str, str, str], Dict[str, Any]] = {
    ("openai", "create_response", "defaults"): {},
    ("openai", "create_response", "every-option"): {"model": "o4-mini", **RESPONSE_ALL},
    ("openai", "create_response", "sampling"): SAMPLING,
    ("openai", "create_response", "background"): BACKGROUND,
    ("azure-v1", "create_response", "defaults"): {},
    ("azure-v1", "create_response", "every-option"): {"model": "my-reasoning-deployment", **RESPONSE_ALL},
    ("azure-v1", "create_response", "sampling"): {**SAMPLING, "model": "my-chat-deployment"},
    ("azure-v1", "create_response", "background"): {**BACKGROUND, "cancel_on_timeout": False},
    ("openai", "create_embeddings", "defaults"): {},
    ("openai", "create_embeddings", "every-option"): EMBEDDINGS_ALL,
    ("openai", "create_embeddings", "base64-kept"): EMBEDDINGS_RAW,
    ("azure-v1", "create_embeddings", "defaults"): {},
    ("azure-v1", "create_embeddings", "every-option"): {**EMBEDDINGS_ALL, "model": "my-embedding-deployment"},
    ("azure-v1", "create_embeddings", "base64-kept"): EMBEDDINGS_RAW,
    ("openai", "edit_image", "defaults"): {},
    ("openai", "edit_image", "every-option"): EDIT_ALL,
    ("openai", "create_image", "gpt-image-1.5"): {
        "model": "gpt-image-1.5", "prompt": "An otter", "n": 2, "size": "1024x1536", "quality": "low",
        "background": "transparent", "output_format": "webp", "output_compression": 40, "moderation": "low"},
    ("openai", "create_image", "gpt-image-2-free-size"): {"model": "gpt-image-2", "size": "2048x1152"},
    ("azure-v1-preview", "create_image", "defaults"): {},
    ("azure-v1-preview", "create_image", "gpt-image"): {
        "model": "my-gpt-image-deployment", "prompt": "An otter", "n": 2, "size": "1536x1024", "quality": "medium",
        "background": "opaque", "output_format": "jpeg", "output_compression": 60, "moderation": "low"},
}
# Requests per case where it is not one: embeddings split by inputs_per_request; a background run
# polls (Prism's example answer decides how often), so it is only checked to conform.
EXPECTED_REQUESTS = {("openai", "create_embeddings", "every-option"): 2,
                     ("azure-v1", "create_embeddings", "every-option"): 2}
POLLING = "background"
# Prism's generated answers the action cannot use (the request still conformed).
UNUSABLE_MOCK_ANSWERS = {("azure-v1", "create_embeddings"): errors.InvalidResponseError}
# Several edit images go as `image[]`, a name the spec does not know (see the module docstring).
BRACKETED_IMAGES = {("openai", "edit_image", "every-option")}
TOO_MANY = "Too many violations! "


def request_violations(exchange: Dict[str, Any]) -> List[str]:
    """The violations about the request. Prism folds a long list into one truncated "Too many
    violations!" string; when every location in it is the generated answer's, none is ours."""
    found = []
    for violation in exchange["violations"]:
        locations = re.findall(r'"location":\["(\w+)"', violation)
        if violation.startswith(TOO_MANY) and locations and set(locations) == {"response"}:
            continue
        found.append(violation)
    return found
# Where the routes are: a judge that must see the request at a path beginning with this.
ROUTE_PREFIX = {"openai": "/v1/", "azure-v1": "/openai/v1/", "azure-v1-preview": "/openai/v1/"}


def case_ids() -> List[Any]:
    return [pytest.param(*key, id="-".join(key)) for key in CASES]


@pytest.mark.parametrize("service, action, case", case_ids())
def test_requests_conform_to_the_official_spec(service, action, case, judges, quick_runtime):
    judge = judges[service]
    judge.reset()
    result, error = run_step(quick_runtime, action, CONNECTIONS[service](judge.url), CASES[service, action, case])

    sent = list(judge.exchanges)
    assert sent, f"nothing was sent ({error!r})"
    if (service, action, case) in BRACKETED_IMAGES:
        sent = [_with_image_parts_renamed(judge, exchange) for exchange in sent]
    for exchange in sent:
        assert exchange["path"].startswith(ROUTE_PREFIX[service]), exchange["path"]
        assert exchange["status"] != 422 and request_violations(exchange) == [], (
            exchange["method"], exchange["path"], exchange["violations"], exchange["request_body"][:500])
        assert exchange["status"] is not None and exchange["status"] < 400, exchange
    if case != POLLING:
        assert len(sent) == EXPECTED_REQUESTS.get((service, action, case), 1)
    if (service, action, case) in BRACKETED_IMAGES:
        assert isinstance(error, errors.BadRequestError) and error.status == 422  # Prism's answer to `image[]`
    elif error is not None:
        assert isinstance(error, UNUSABLE_MOCK_ANSWERS.get((service, action), ())), repr(error)
    else:
        assert result is not None


def _with_image_parts_renamed(judge: RecordingProxy, exchange: Dict[str, Any]) -> Dict[str, Any]:
    """The spec knows `image`, not `image[]`: Prism's only complaint is the missing `image`, and
    the same body with the parts named `image` passes."""
    assert exchange["status"] == 422
    assert exchange["violations"] == ["body: Request body must have required property 'image'"]
    body = exchange["request_body"].replace(b'name="image[]"', b'name="image"')
    boundary = body[2:body.index(b"\r\n")].decode()
    answer = requests.post(exchange["upstream"] + exchange["path"], data=body, timeout=30,
                           headers={"Authorization": f"Bearer {PRISM_KEY}",
                                    "Content-Type": f"multipart/form-data; boundary={boundary}"})
    return {**exchange, "status": answer.status_code, "violations": violations(answer), "request_body": body}


def test_the_spec_refuses_every_message_with_content_parts(judges, quick_runtime):
    """The spec's input items are a `oneOf` in which a message with content parts matches both
    the easy and the full message schema, so even the plainest one is refused: content parts
    cannot be judged by this spec (the API takes them)."""
    judge = judges["openai"]
    judge.reset()
    _, error = run_step(quick_runtime, ACTION_RESPONSE, openai_connection(judge.url),
                        {"input": [{"role": "user", "content": CONTENT_PARTS[:1]}]})
    [exchange] = judge.exchanges
    assert exchange["status"] == 422 and isinstance(error, errors.ApiError)
    assert any(violation.startswith("body.input") for violation in exchange["violations"]), exchange["violations"]
    judge.reset()
    run_step(quick_runtime, ACTION_RESPONSE, openai_connection(judge.url),
             {"input": [{"role": "user", "content": "the same message as text"}]})
    assert judge.exchanges[0]["status"] == 200


def test_image_generation_on_azure_v1_goes_to_the_preview_route(judges, quick_runtime):
    judge = judges["azure-v1-preview"]
    judge.reset()
    run_step(quick_runtime, "create_image", azure_v1_connection(judge.url), {"model": "gpt-image-2"})
    [exchange] = judge.exchanges
    assert exchange["path"] == "/openai/v1/images/generations?api-version=preview"


def test_the_cases_set_every_optional_input():
    """Per action, the cases together set each optional input to a value other than its default."""
    for action_key in {action for _, action, _ in CASES}:
        inputs_form = MANIFEST.action(action_key).inputs
        optional = {name for name in inputs_form.fields if name not in inputs_form.schema.get("required", ())}
        cases = [inputs for (_, action, case), inputs in CASES.items() if action == action_key and case != "defaults"]
        if action_key == "create_image":
            optional &= {"background", "output_format", "output_compression", "moderation"}  # the gpt-image options
        covered = {name for inputs in cases for name in inputs if not inputs_form.is_default(name, inputs[name])}
        assert optional <= covered, (action_key, optional - covered)


# --- negative controls: the judges refuse invalid requests on these operations -----------------------


@pytest.mark.parametrize("service, path, body, field", [
    ("openai", "/v1/responses", {"model": "m", "input": "x", "max_output_tokens": "many"}, "max_output_tokens"),
    ("openai", "/v1/embeddings", {"model": "m", "input": "x", "encoding_format": "binary"}, "encoding_format"),
    ("azure-v1", "/v1/responses", {"model": "m", "input": "x", "temperature": 9}, "temperature"),
    ("azure-v1", "/v1/embeddings", {"input": "x"}, "model"),
    ("azure-v1-preview", "/v1/images/generations?api-version=preview",
     {"model": "m", "prompt": "x", "output_format": "gif"}, "output_format"),
], ids=["openai-responses", "openai-embeddings", "azure-responses", "azure-embeddings", "azure-images"])
def test_negative_control_an_invalid_request_gets_422(service, path, body, field, judges, quick_runtime):
    judge = judges[service]
    judge.reset()
    run_step(quick_runtime, "raw_request", CONNECTIONS[service](judge.url), {"url": path, "method": "POST", "data": body})
    [exchange] = judge.exchanges
    assert exchange["status"] == 422
    assert any(field in violation for violation in exchange["violations"]), exchange["violations"]


def test_negative_control_an_image_edit_without_an_image_gets_422(judges, quick_runtime):
    judge = judges["openai"]
    judge.reset()
    run_step(quick_runtime, "raw_request", openai_connection(judge.url),
             {"url": "/v1/images/edits", "method": "POST", "form_data": {"prompt": "Add a boat"}})
    [exchange] = judge.exchanges
    assert exchange["status"] == 422 and any("image" in violation for violation in exchange["violations"])
