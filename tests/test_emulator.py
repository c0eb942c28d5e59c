"""Tests for the local API emulator, driven over real HTTP with `requests` against a started server."""

from __future__ import annotations

import base64
import email.utils
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from azure_openai_connector.emulator import Emulator, Fault, RecordedRequest

REPO_ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-0123456789"
ENTRA_TOKEN = "entra-token-abc"
API_VERSION = "2024-10-21"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
AZURE_CHAT = {"messages": [{"role": "user", "content": "Say hello"}]}
AZURE_CHAT_PATH = f"/openai/deployments/my-deployment/chat/completions?api-version={API_VERSION}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT = 10


@pytest.fixture(scope="module")
def running_emulator():
    emulator = Emulator(api_key=KEY, bearer_tokens=(ENTRA_TOKEN,)).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def emu(running_emulator):
    running_emulator.reset()
    running_emulator.latency = 0.0
    yield running_emulator
    running_emulator.reset()
    running_emulator.latency = 0.0


def openai_call(emu, path, method="POST", key=KEY, **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, emu.url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def azure_call(emu, path, method="POST", key=KEY, **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["api-key"] = key
    return requests.request(method, emu.url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def assert_openai_error(response, status, param=None, code=None, error_type=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    if error_type is not None:
        assert error["type"] == error_type
    return error


def assert_azure_error(response, status, code):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert all(isinstance(error[key], str) for key in ("param", "type") if key in error)
    return error


# --- independence and lifecycle ----------------------------------------------------


def test_importing_the_emulator_pulls_in_no_connector_modules():
    probe = (
        "import sys, azure_openai_connector.emulator\n"
        "bad = [m for m in ('azure_openai_connector.http', 'azure_openai_connector.connection',"
        " 'azure_openai_connector.actions') if m in sys.modules]\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_nothing_is_bound_before_start_and_stop_is_idempotent():
    emulator = Emulator(api_key=KEY)
    with pytest.raises(RuntimeError):
        emulator.url
    emulator.stop()
    assert emulator.start() is emulator
    url = emulator.url
    assert url.startswith("http://127.0.0.1:")
    assert openai_call(emulator, "/v1/models", method="GET").status_code == 200
    emulator.stop()
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/v1/models", timeout=2)


def test_context_manager_starts_and_stops():
    with Emulator(api_key=KEY) as emulator:
        assert emulator.api_key == KEY
        assert openai_call(emulator, "/v1/models", method="GET").status_code == 200
        url = emulator.url
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/v1/models", timeout=2)


def test_non_loopback_host_is_refused():
    with pytest.raises(ValueError):
        Emulator(host="0.0.0.0")


# --- auth --------------------------------------------------------------------------


def test_openai_routes_need_the_bearer_key(emu):
    assert openai_call(emu, "/v1/chat/completions", json=CHAT).status_code == 200
    wrong = openai_call(emu, "/v1/chat/completions", key="sk-wrong-key-123456789", json=CHAT)
    error = assert_openai_error(wrong, 401, code="invalid_api_key")
    assert "sk-wrong-key-123456789" not in wrong.text
    assert "6789" in error["message"]
    missing = openai_call(emu, "/v1/chat/completions", key=None, json=CHAT)
    assert_openai_error(missing, 401, code="invalid_api_key")
    api_key_header_only = requests.post(
        emu.url + "/v1/chat/completions", json=CHAT, headers={"api-key": KEY}, timeout=TIMEOUT
    )
    assert api_key_header_only.status_code == 401


def test_azure_routes_take_api_key_or_bearer(emu):
    assert azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT).status_code == 200
    for token in (KEY, ENTRA_TOKEN):
        response = azure_call(
            emu, AZURE_CHAT_PATH, key=None, json=AZURE_CHAT, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
    wrong = azure_call(emu, AZURE_CHAT_PATH, key="nope", json=AZURE_CHAT)
    assert wrong.json() == {
        "error": {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
            "a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        }
    }
    assert wrong.status_code == 401
    assert azure_call(emu, AZURE_CHAT_PATH, key=None, json=AZURE_CHAT).status_code == 401


# --- api-version -------------------------------------------------------------------


def test_api_version_rules_on_dated_routes(emu):
    path = "/openai/deployments/d/chat/completions"
    missing = azure_call(emu, path, json=AZURE_CHAT)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "404", "message": "Resource not found"}}
    unsupported = azure_call(emu, path + "?api-version=2024-10", json=AZURE_CHAT)
    assert unsupported.status_code == 400
    assert unsupported.json() == {"error": {"code": "BadRequest", "message": "API version not supported"}}
    assert azure_call(emu, path + "?api-version=2025-04-01-preview", json=AZURE_CHAT).status_code == 200
    assert azure_call(emu, "/openai/models", method="GET").status_code == 404
    assert azure_call(emu, f"/openai/models?api-version={API_VERSION}", method="GET").status_code == 200


def test_api_version_is_optional_on_v1_routes(emu):
    body = {"model": "my-deployment", "messages": [{"role": "developer", "content": "hi"}]}
    assert azure_call(emu, "/openai/v1/chat/completions", json=body).status_code == 200
    assert azure_call(emu, "/openai/v1/chat/completions?api-version=preview", json=body).status_code == 200
    assert azure_call(emu, "/openai/v1/models", method="GET").status_code == 200
    assert azure_call(emu, "/openai/v1/models?api-version=nonsense", method="GET").status_code == 400


# --- chat --------------------------------------------------------------------------


def test_openai_chat_answer_shape(emu):
    response = openai_call(emu, "/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
    assert answer["id"].startswith("chatcmpl-")
    assert answer["object"] == "chat.completion"
    assert isinstance(answer["created"], int)
    assert answer["model"] == "gpt-4o-mini"
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Emulated reply to: Say hello", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = answer["usage"]
    assert usage["prompt_tokens"] == 3  # ceil(len("Say hello") / 4)
    assert usage["completion_tokens"] == 7  # ceil(len("Emulated reply to: Say hello") / 4)
    assert usage["total_tokens"] == 10


def test_azure_dated_chat_adds_filter_results(emu):
    answer = azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT).json()
    assert answer["model"] == "gpt-4o-mini-2024-07-18"
    assert answer["object"] == "chat.completion"
    choice = answer["choices"][0]
    assert set(choice["message"]) == {"role", "content", "refusal"}
    assert choice["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert choice["content_filter_results"]["protected_material_text"] == {"filtered": False, "detected": False}
    prompt_results = answer["prompt_filter_results"]
    assert prompt_results[0]["prompt_index"] == 0
    assert all(not result["filtered"] for result in prompt_results[0]["content_filter_results"].values())


def test_azure_v1_chat_needs_model_and_reports_the_model_name(emu):
    missing = azure_call(emu, "/openai/v1/chat/completions", json=AZURE_CHAT)
    assert_azure_error(missing, 400, "missing_required_parameter")
    answer = azure_call(emu, "/openai/v1/chat/completions", json=dict(AZURE_CHAT, model="dep")).json()
    assert answer["model"] == "gpt-4o-mini-2024-07-18"
    assert "prompt_filter_results" in answer


def test_developer_role_depends_on_the_api(emu):
    body = {"messages": [{"role": "developer", "content": "Be brief"}, {"role": "user", "content": "hi"}]}
    refused = azure_call(emu, AZURE_CHAT_PATH, json=body)
    error = assert_azure_error(refused, 400, "invalid_value")
    assert error["param"] == "messages[0].role"
    preview = "/openai/deployments/d/chat/completions?api-version=2025-04-01-preview"
    assert azure_call(emu, preview, json=body).status_code == 200
    assert openai_call(emu, "/v1/chat/completions", json=dict(body, model="gpt-4o")).status_code == 200


@pytest.mark.parametrize(
    "change, param",
    [
        ({"n": 0}, "n"),
        ({"n": 129}, "n"),
        ({"n": "2"}, "n"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"model": None}, "model"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_chat_validation_names_the_param(emu, change, param):
    body = {key: value for key, value in {**CHAT, **change}.items() if value is not None}
    response = openai_call(emu, "/v1/chat/completions", json=body)
    assert_openai_error(response, 400, param=param, error_type="invalid_request_error")


def test_invalid_json_body_is_a_bad_request(emu):
    response = openai_call(
        emu, "/v1/chat/completions", data=b'{"model": ', headers={"Content-Type": "application/json"}
    )
    assert_openai_error(response, 400, error_type="invalid_request_error")
    azure = azure_call(emu, AZURE_CHAT_PATH, data=b"not json", headers={"Content-Type": "application/json"})
    assert_azure_error(azure, 400, "BadRequest")


def test_n_choices_and_word_truncation(emu):
    answer = openai_call(emu, "/v1/chat/completions", json=dict(CHAT, n=3)).json()
    assert [choice["index"] for choice in answer["choices"]] == [0, 1, 2]
    assert answer["choices"][2]["message"]["content"] == "Emulated reply to: Say hello (choice 2)"
    cut = openai_call(emu, "/v1/chat/completions", json=dict(CHAT, max_tokens=2)).json()["choices"][0]
    assert cut["message"]["content"] == "Emulated reply"
    assert cut["finish_reason"] == "length"
    cut = openai_call(emu, "/v1/chat/completions", json=dict(CHAT, max_completion_tokens=3)).json()["choices"][0]
    assert cut["message"]["content"] == "Emulated reply to:"
    roomy = openai_call(emu, "/v1/chat/completions", json=dict(CHAT, max_tokens=50)).json()["choices"][0]
    assert roomy["finish_reason"] == "stop"


def test_reply_quotes_the_last_user_message_capped(emu):
    long_text = "x" * 500
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": long_text}]}]
    answer = openai_call(emu, "/v1/chat/completions", json=dict(CHAT, messages=messages)).json()
    assert answer["choices"][0]["message"]["content"] == "Emulated reply to: " + "x" * 200


# --- legacy completions ---------------------------------------------------------------


def test_completion_index_maps_prompt_and_copy(emu):
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": ["alpha", "beta"], "n": 2}
    answer = openai_call(emu, "/v1/completions", json=body).json()
    assert answer["object"] == "text_completion"
    assert answer["id"].startswith("cmpl-")
    texts = {choice["index"]: choice["text"] for choice in answer["choices"]}
    assert texts == {
        0: " Emulated completion of: alpha",
        1: " Emulated completion of: alpha (choice 1)",
        2: " Emulated completion of: beta",
        3: " Emulated completion of: beta (choice 1)",
    }
    assert all(choice["logprobs"] is None and choice["finish_reason"] == "stop" for choice in answer["choices"])


def test_completion_default_max_tokens_is_16_words(emu):
    prompt = " ".join(f"w{i}" for i in range(40))
    choice = openai_call(emu, "/v1/completions", json={"model": "m", "prompt": prompt}).json()["choices"][0]
    assert len(choice["text"].split()) == 16
    assert choice["finish_reason"] == "length"
    choice = openai_call(emu, "/v1/completions", json={"model": "m", "prompt": prompt, "max_tokens": 100}).json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["text"].endswith("w39")


def test_azure_completion_filter_results(emu):
    path = f"/openai/deployments/instruct/completions?api-version={API_VERSION}"
    answer = azure_call(emu, path, json={"prompt": ["a", "b"]}).json()
    assert [result["prompt_index"] for result in answer["prompt_filter_results"]] == [0, 1]
    assert all("content_filter_results" in choice for choice in answer["choices"])
    missing = azure_call(emu, path, json={"max_tokens": 5})
    assert_azure_error(missing, 400, "missing_required_parameter")


# --- images ----------------------------------------------------------------------


def test_dall_e_2_is_the_default_and_serves_a_url(emu):
    answer = openai_call(emu, "/v1/images/generations", json={"prompt": "a cat", "n": 2}).json()
    assert isinstance(answer["created"], int)
    assert len(answer["data"]) == 2
    for item in answer["data"]:
        assert set(item) == {"url"}
        assert item["url"].startswith(emu.url + "/images/")
    image = requests.get(answer["data"][0]["url"], timeout=TIMEOUT)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE)


def test_dall_e_3_b64_with_revised_prompt(emu):
    body = {"prompt": "a cat", "model": "dall-e-3", "response_format": "b64_json", "size": "1792x1024"}
    item = openai_call(emu, "/v1/images/generations", json=body).json()["data"][0]
    assert set(item) == {"b64_json", "revised_prompt"}
    assert base64.b64decode(item["b64_json"]).startswith(PNG_SIGNATURE)


def test_gpt_image_always_answers_base64(emu):
    answer = openai_call(
        emu, "/v1/images/generations", json={"prompt": "a cat", "model": "gpt-image-1", "size": "1536x1024"}
    ).json()
    assert set(answer["data"][0]) == {"b64_json"}
    assert answer["size"] == "1536x1024"
    assert answer["output_format"] == "png"
    assert set(answer["usage"]) >= {"input_tokens", "output_tokens", "total_tokens", "input_tokens_details"}


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "dall-e-3", "n": 2}, "n"),
        ({"model": "dall-e-3", "size": "256x256"}, "size"),
        ({"model": "dall-e-3", "prompt": "p" * 4001}, "prompt"),
        ({"model": "dall-e-2", "n": 11}, "n"),
        ({"model": "dall-e-2", "size": "1792x1024"}, "size"),
        ({"model": "dall-e-2", "prompt": "p" * 1001}, "prompt"),
        ({"model": "dall-e-2", "quality": "hd"}, "quality"),
        ({"model": "gpt-image-1", "response_format": "url"}, "response_format"),
        ({"model": "gpt-image-1", "size": "1792x1024"}, "size"),
        ({"model": "gpt-image-1", "prompt": "p" * 32001}, "prompt"),
        ({"model": "dall-e-3", "output_format": "png"}, "output_format"),
    ],
)
def test_image_rules_per_model(emu, body, param):
    response = openai_call(emu, "/v1/images/generations", json={"prompt": "a cat", **body})
    assert_openai_error(response, 400, param=param, error_type="invalid_request_error")


def test_image_prompt_limits_are_inclusive(emu):
    for model, limit in (("dall-e-2", 1000), ("dall-e-3", 4000)):
        response = openai_call(emu, "/v1/images/generations", json={"prompt": "p" * limit, "model": model})
        assert response.status_code == 200, (model, response.text)


def test_azure_images_follow_dall_e_3_and_carry_filter_results(emu):
    path = f"/openai/deployments/dalle/images/generations?api-version={API_VERSION}"
    item = azure_call(emu, path, json={"prompt": "a cat"}).json()["data"][0]
    assert item["url"].startswith(emu.url + "/images/")
    assert "revised_prompt" in item
    assert item["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
    assert item["prompt_filter_results"]["jailbreak"] == {"filtered": False, "detected": False}
    item = azure_call(emu, path, json={"prompt": "a cat", "response_format": "b64_json"}).json()["data"][0]
    assert "b64_json" in item and "url" not in item
    assert_azure_error(azure_call(emu, path, json={"prompt": "a cat", "n": 2}), 400, "integer_above_max_value")
    assert_azure_error(azure_call(emu, path, json={"prompt": "a cat", "quality": "auto"}), 400, "invalid_value")


# --- models ------------------------------------------------------------------------


def test_models_list_and_lookup(emu):
    listing = openai_call(emu, "/v1/models", method="GET").json()
    assert listing["object"] == "list"
    ids = {model["id"] for model in listing["data"]}
    assert {"gpt-4o-mini", "gpt-4o", "dall-e-3", "gpt-image-1", "gpt-3.5-turbo-instruct", "text-embedding-3-small"} <= ids
    for model in listing["data"]:
        assert set(model) == {"id", "object", "created", "owned_by", "shutdown_date"} and model["object"] == "model"
    assert openai_call(emu, "/v1/models/gpt-4o", method="GET").json()["id"] == "gpt-4o"
    assert_openai_error(openai_call(emu, "/v1/models/no-such-model", method="GET"), 404, param="model")
    assert azure_call(emu, "/openai/v1/models", method="GET").json()["object"] == "list"


# --- files -------------------------------------------------------------------------


def test_multipart_upload_is_recorded_and_downloads_back(emu):
    payload = bytes(range(256)) * 3 + b"\r\n--not-a-boundary\r\n"
    files = [
        ("file", ("data.bin", payload, "application/octet-stream")),
        ("file", ("notes.txt", "héllo\n".encode("utf-8"), "text/plain")),
    ]
    response = openai_call(emu, "/v1/files", files=files, data={"purpose": "assistants"})
    assert response.status_code == 200, response.text
    stored = response.json()
    assert set(stored) == {"id", "object", "bytes", "created_at", "filename", "purpose", "status"}
    assert stored["object"] == "file" and stored["status"] == "processed"
    assert stored["filename"] == "data.bin" and stored["bytes"] == len(payload)
    assert stored["purpose"] == "assistants"

    recorded = emu.requests[-1]
    assert recorded.form == {"purpose": "assistants"}
    assert [(part["field"], part["filename"], part["content_type"]) for part in recorded.files] == [
        ("file", "data.bin", "application/octet-stream"),
        ("file", "notes.txt", "text/plain"),
    ]
    assert recorded.files[0]["data"] == payload
    assert recorded.json is None

    download = openai_call(emu, f"/v1/files/{stored['id']}/content", method="GET")
    assert download.content == payload
    assert download.headers["content-type"] == "application/octet-stream"
    assert openai_call(emu, f"/v1/files/{stored['id']}", method="GET").json()["id"] == stored["id"]
    assert any(item["id"] == stored["id"] for item in openai_call(emu, "/v1/files", method="GET").json()["data"])


def test_upload_needs_purpose_and_a_file(emu):
    no_purpose = openai_call(emu, "/v1/files", files={"file": ("a.txt", b"a")})
    assert_openai_error(no_purpose, 400, param="purpose")
    bad_purpose = openai_call(emu, "/v1/files", files={"file": ("a.txt", b"a")}, data={"purpose": "fun"})
    assert_openai_error(bad_purpose, 400, param="purpose", code="invalid_value")
    no_file = openai_call(emu, "/v1/files", files={"other": (None, "x")}, data={"purpose": "batch"})
    assert_openai_error(no_file, 400, param="file")
    azure = azure_call(emu, f"/openai/files?api-version={API_VERSION}", files={"file": ("a.txt", b"abc")},
                       data={"purpose": "batch"})
    assert azure.status_code == 200 and azure.json()["bytes"] == 3


def test_seeded_binary_and_text_content(emu):
    binary = openai_call(emu, "/v1/files/file-emulator-binary/content", method="GET")
    assert binary.status_code == 200
    assert binary.content == bytes(range(256)) * 4
    assert binary.headers["content-type"] == "application/octet-stream"
    text = azure_call(emu, f"/openai/files/file-emulator-text/content?api-version={API_VERSION}", method="GET")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == "hello from the emulator\n"
    missing = openai_call(emu, "/v1/files/file-nope/content", method="GET")
    assert_openai_error(missing, 404, param="id")


# --- routing and common headers ----------------------------------------------------


def test_unknown_route_and_wrong_method(emu):
    assert_openai_error(openai_call(emu, "/v1/nothing-here", json={}), 404)
    assert azure_call(emu, "/openai/nothing?api-version=2024-10-21", method="GET").json() == {
        "error": {"code": "404", "message": "Resource not found"}
    }
    wrong = openai_call(emu, "/v1/chat/completions", method="GET")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


def test_every_answer_carries_request_ids_and_rate_headers(emu):
    first = openai_call(emu, "/v1/models", method="GET")
    second = openai_call(emu, "/v1/models", method="GET")
    assert first.headers["x-request-id"].startswith("req_")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers["openai-processing-ms"].isdigit()  # whole milliseconds, as OpenAI sends them
    for name in ("limit-requests", "limit-tokens", "remaining-requests", "remaining-tokens", "reset-requests", "reset-tokens"):
        assert f"x-ratelimit-{name}" in first.headers
    azure = azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT)
    assert azure.headers["apim-request-id"]
    assert azure.headers["x-request-id"]
    assert "x-ratelimit-remaining-requests" in azure.headers and "x-ratelimit-remaining-tokens" in azure.headers


# --- faults ------------------------------------------------------------------------


def test_rate_limit_with_retry_after_seconds_and_ms(emu):
    emu.script(Fault.rate_limit(retry_after=2, retry_after_ms=1500))
    response = openai_call(emu, "/v1/chat/completions", json=CHAT)
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "1500"
    assert response.headers["x-request-id"]
    error = assert_openai_error(response, 429, code="rate_limit_exceeded", error_type="requests")
    assert error["message"].startswith("Rate limit reached for requests")
    assert openai_call(emu, "/v1/chat/completions", json=CHAT).status_code == 200


def test_rate_limit_on_azure_uses_the_azure_shape(emu):
    emu.script(Fault.rate_limit(retry_after=6))
    response = azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT)
    error = assert_azure_error(response, 429, "429")
    assert "ChatCompletions_Create" in error["message"] and API_VERSION in error["message"]
    assert "Please retry after 6 seconds" in error["message"]
    assert response.headers["retry-after"] == "6"
    assert response.headers["apim-request-id"]


def test_rate_limit_with_http_date(emu):
    emu.script(Fault.rate_limit(retry_after=30, retry_after_date=True))
    response = openai_call(emu, "/v1/chat/completions", json=CHAT)
    assert response.status_code == 429
    when = email.utils.parsedate_to_datetime(response.headers["retry-after"])
    assert 20 <= when.timestamp() - time.time() <= 40


def test_insufficient_quota_has_no_retry_after(emu):
    emu.script(Fault.insufficient_quota())
    response = openai_call(emu, "/v1/chat/completions", json=CHAT)
    assert response.json() == {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    assert response.status_code == 429
    assert "retry-after" not in response.headers


def test_status_fault_with_extra_headers_in_both_shapes(emu):
    emu.script(Fault.status(503, headers={"x-should-retry": "false"}))
    response = openai_call(emu, "/v1/chat/completions", json=CHAT)
    assert_openai_error(response, 503)
    assert response.headers["x-should-retry"] == "false"
    assert "overloaded" in response.json()["error"]["message"]
    emu.script(Fault.status(500, message="boom"))
    azure = azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT)
    assert azure.json() == {"error": {"code": "500", "message": "boom"}}
    assert azure.headers["apim-request-id"] and azure.headers["x-request-id"]
    emu.script(Fault.status(502))
    assert_openai_error(openai_call(emu, "/v1/models", method="GET"), 502, error_type="server_error")


def test_unauthorized_not_found_and_bad_request_faults(emu):
    emu.script(Fault.unauthorized())
    assert_openai_error(openai_call(emu, "/v1/chat/completions", json=CHAT), 401, code="invalid_api_key")
    emu.script(Fault.not_found())
    error = assert_azure_error(azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT), 404, "DeploymentNotFound")
    assert error["message"].startswith("The API deployment for this resource does not exist.")
    emu.script(Fault.not_found())
    assert_openai_error(openai_call(emu, "/v1/chat/completions", json=CHAT), 404, code="model_not_found")
    emu.script(Fault.bad_request("Nope.", param="messages", code="odd"))
    error = assert_openai_error(openai_call(emu, "/v1/chat/completions", json=CHAT), 400, param="messages", code="odd")
    assert error["message"] == "Nope." and error["type"] == "invalid_request_error"


def test_content_filter_prompt_live_and_spec_shapes(emu):
    emu.script(Fault.content_filter_prompt())
    live = azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT)
    assert live.status_code == 400
    error = live.json()["error"]
    assert error["code"] == "content_filter" and error["param"] == "prompt" and error["type"] is None
    assert error["status"] == 400
    assert error["message"].startswith("The response was filtered due to the prompt triggering")
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["hate"] == {"filtered": True, "severity": "high"}
    assert error["innererror"]["content_filter_result"]["violence"] == {"filtered": False, "severity": "safe"}

    emu.script(Fault.content_filter_prompt(spec_shape=True))
    spec = azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT).json()["error"]
    assert "innererror" not in spec
    assert spec["inner_error"]["code"] == "ResponsibleAIPolicyViolation"
    assert spec["inner_error"]["content_filter_results"]["hate"]["filtered"] is True


def test_content_filter_output_is_a_200_with_the_filter_reason(emu):
    emu.script(Fault.content_filter_output())
    response = azure_call(emu, AZURE_CHAT_PATH, json=AZURE_CHAT)
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == ""
    assert any(result.get("filtered") for result in choice["content_filter_results"].values())
    emu.script(Fault.content_filter_output())
    choice = openai_call(emu, "/v1/chat/completions", json=CHAT).json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"


def test_slow_fault_and_latency_delay_the_answer(emu):
    emu.script(Fault.slow(0.3))
    started = time.monotonic()
    assert openai_call(emu, "/v1/models", method="GET").status_code == 200
    assert 0.25 <= time.monotonic() - started < 5
    emu.latency = 0.2
    started = time.monotonic()
    assert openai_call(emu, "/v1/models", method="GET").status_code == 200
    assert 0.15 <= time.monotonic() - started < 5


def test_drop_closes_the_connection_without_an_answer(emu):
    emu.script(Fault.drop())
    with pytest.raises(requests.ConnectionError):
        openai_call(emu, "/v1/chat/completions", json=CHAT)
    assert openai_call(emu, "/v1/chat/completions", json=CHAT).status_code == 200


def test_drop_mid_body_breaks_the_body_read(emu):
    emu.script(Fault.drop_mid_body())
    with pytest.raises(requests.RequestException):
        response = openai_call(emu, "/v1/chat/completions", json=CHAT)
        response.json()
    assert emu.faults_served == [(0, "drop_mid_body")]


def test_malformed_and_missing_choices(emu):
    emu.script(Fault.malformed())
    response = openai_call(emu, "/v1/chat/completions", json=CHAT)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.text)
    emu.script(Fault.missing_choices())
    answer = openai_call(emu, "/v1/chat/completions", json=CHAT).json()
    assert "choices" not in answer and answer["object"] == "chat.completion"


def test_redirect_fault(emu):
    emu.script(Fault.redirect("https://elsewhere.example/v1/chat/completions"))
    response = openai_call(emu, "/v1/chat/completions", json=CHAT, allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "https://elsewhere.example/v1/chat/completions"
    emu.script(Fault.redirect("/v1/models", status=302))
    assert openai_call(emu, "/v1/models", method="GET", allow_redirects=False).status_code == 302


def test_fault_values_are_immutable_and_named():
    fault = Fault.status(500)
    assert fault.kind == "status"
    with pytest.raises(Exception):
        fault.kind = "other"
    kinds = [
        Fault.rate_limit(), Fault.insufficient_quota(), Fault.unauthorized(), Fault.not_found(), Fault.bad_request(),
        Fault.content_filter_prompt(), Fault.content_filter_output(), Fault.slow(1), Fault.drop(),
        Fault.drop_mid_body(), Fault.malformed(), Fault.missing_choices(), Fault.redirect("/x"),
    ]
    assert len({fault.kind for fault in kinds}) == len(kinds)


# --- scripting -----------------------------------------------------------------------


def test_script_times_then_normal(emu):
    emu.script(Fault.status(500), times=2)
    statuses = [openai_call(emu, "/v1/models", method="GET").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert emu.faults_served == [(0, "status"), (1, "status")]


def test_script_forever_until_reset(emu):
    emu.script(Fault.status(503), times=None)
    assert [openai_call(emu, "/v1/models", method="GET").status_code for _ in range(4)] == [503] * 4
    emu.reset()
    assert openai_call(emu, "/v1/models", method="GET").status_code == 200


def test_script_match_by_substring_and_callable(emu):
    emu.script(Fault.status(500), match="poison")
    emu.script(Fault.status(502), match="/v1/models")
    emu.script(Fault.status(504), match=lambda request: request.method == "POST" and request.json.get("n") == 2)
    assert openai_call(emu, "/v1/chat/completions", json=CHAT).status_code == 200
    assert openai_call(emu, "/v1/chat/completions", json=dict(CHAT, n=2)).status_code == 504
    poisoned = dict(CHAT, messages=[{"role": "user", "content": "poison pill"}])
    assert openai_call(emu, "/v1/chat/completions", json=poisoned).status_code == 500
    assert openai_call(emu, "/v1/models", method="GET").status_code == 502
    assert openai_call(emu, "/v1/models", method="GET").status_code == 200


def test_script_is_fifo_and_one_fault_per_request(emu):
    emu.script(Fault.status(500))
    emu.script(Fault.status(503))
    first = openai_call(emu, "/v1/models", method="GET")
    second = openai_call(emu, "/v1/models", method="GET")
    third = openai_call(emu, "/v1/models", method="GET")
    assert [first.status_code, second.status_code, third.status_code] == [500, 503, 200]


def test_random_faults_are_deterministic_for_a_seed(emu):
    faults = [Fault.status(500), Fault.status(503), Fault.rate_limit(retry_after=1)]

    def run():
        emu.reset()
        emu.random_faults(rate=0.4, faults=faults, seed=99)
        statuses = [openai_call(emu, "/v1/models", method="GET").status_code for _ in range(25)]
        return statuses, emu.faults_served

    first, second = run(), run()
    assert first == second
    assert 0 < len(first[1]) < 25
    emu.random_faults(rate=0)
    assert all(openai_call(emu, "/v1/models", method="GET").status_code == 200 for _ in range(5))


def test_scripted_fault_wins_over_random(emu):
    emu.random_faults(rate=1.0, faults=[Fault.status(500)], seed=1)
    emu.script(Fault.status(418))
    assert openai_call(emu, "/v1/models", method="GET").status_code == 418
    assert openai_call(emu, "/v1/models", method="GET").status_code == 500


# --- recording and concurrency ------------------------------------------------------------


def test_requests_are_recorded_in_order(emu):
    emu.script(Fault.status(500), match="/v1/models")
    openai_call(emu, "/v1/chat/completions?x=1&x=2&y=", json=CHAT, headers={"X-Custom": "yes"})
    openai_call(emu, "/v1/models", method="GET")
    assert emu.request_count == 2
    chat, models = emu.requests
    assert isinstance(chat, RecordedRequest)
    assert (chat.method, chat.path, chat.query) == ("POST", "/v1/chat/completions", {"x": "2", "y": ""})
    assert chat.headers.get("x-custom") == chat.headers.get("X-CUSTOM") == "yes"
    assert chat.headers["authorization"] == f"Bearer {KEY}"
    assert chat.json == CHAT and json.loads(chat.body) == CHAT and json.loads(chat.text) == CHAT
    assert chat.fault is None and chat.files == [] and chat.form == {}
    assert (models.method, models.body, models.json, models.fault) == ("GET", b"", None, "status")


def test_reset_clears_requests_counters_and_faults(emu):
    emu.script(Fault.status(500), times=None)
    emu.random_faults(rate=1.0, faults=[Fault.status(503)])
    openai_call(emu, "/v1/models", method="GET")
    emu.latency = 0.01
    emu.reset()
    assert emu.requests == [] and emu.request_count == 0 and emu.faults_served == []
    assert emu.peak_concurrency == 0 and emu.in_flight == 0
    assert emu.latency == 0.01
    assert openai_call(emu, "/v1/models", method="GET").status_code == 200


def test_peak_concurrency_counts_overlapping_requests(emu):
    emu.latency = 0.3
    workers = 6
    barrier = threading.Barrier(workers)
    statuses = []

    def one_call():
        barrier.wait(timeout=TIMEOUT)
        statuses.append(openai_call(emu, "/v1/models", method="GET").status_code)

    threads = [threading.Thread(target=one_call) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert statuses == [200] * workers
    assert 2 <= emu.peak_concurrency <= workers
    assert emu.in_flight == 0


def test_keep_alive_serves_many_requests_on_one_connection(emu):
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {KEY}"
        for _ in range(20):
            assert session.post(emu.url + "/v1/chat/completions", json=CHAT, timeout=TIMEOUT).status_code == 200
    assert emu.request_count == 20


# --- command line ------------------------------------------------------------------------


def test_cli_prints_url_serves_and_exits_cleanly_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "azure_openai_connector.emulator", "--port", "0", "--api-key", "cli-key"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        announced = json.loads(line)
        assert announced["api_key"] == "cli-key"
        assert announced["url"].startswith("http://127.0.0.1:")
        response = requests.get(
            announced["url"] + "/v1/models", headers={"Authorization": "Bearer cli-key"}, timeout=TIMEOUT
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
        assert "listening" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
        process.stdout.close()
        process.stderr.close()


def test_cli_refuses_a_non_loopback_host():
    from azure_openai_connector.emulator import main

    assert main(["--host", "0.0.0.0"]) == 2
