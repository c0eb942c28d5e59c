"""Raw Request against the emulator: paths that cannot leave the host, protected headers, bodies,
response types, the step's own retries, debug logging without secrets, and redirects."""

from __future__ import annotations

import base64
import logging
from typing import Any, Dict

import pytest
from jsonschema import Draft7Validator

import azure_openai_connector
from azure_openai_connector.actions import Step, raw_request
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.errors import (
    ApiError,
    ApiTimeoutError,
    BadRequestError,
    InputValidationError,
    InvalidResponseError,
    RedirectNotFollowedError,
    ServerError,
)
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.runtime import Runtime

from support import API_KEY, RecordedSleep

ACTION = "raw_request"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe"
BINARY_FILE = bytes(range(256)) * 4  # what the emulator stores as file-emulator-binary

ESCAPES = [
    "https://evil.example/x",
    "http://127.0.0.2:9/x",
    "//evil.example/x",
    "/\\evil",
    "/@evil.example",
    "/%40evil.example",
    "/:x@evil.example",
    "/v1/../../x",
    "/v1/..",
    "/..",
    "/.",
    "/v1/%2e%2e/x",
    "/v1/%2E%2e/x",
    "/v1/%252e%252e/x",
    "/v1/%25252e%25252e/x",
    "/v1/%2525252e%2525252e/x",
    "/v1/%2F%2Fevil",
    "/v1/..%2fx",
    "/v1/.%2e/x",
    "/v1/%2e",
    "/v1/models#frag",
    "/v1/models?x=1#frag",
    "/v1/mo dels",
    "/v1/\tmodels",
    "/v1/\r\nHost: evil",
    "/v1/%0d%0aX: y",
    "/v1/models?x=%0d%0aHost:%20evil",
    "/v1/%00",
    "/v1/\x7f",
    "/v1/%",
    "/v1/%zz",
    "/%5C%5Cevil",
    "/v1/%5c..%5cx",
    "evil.example/x",
    "/v1/./models",
    "/v1//models",
    "/v1/%u002e%u002e/x",
    "/v1/models/..;/x",
    "/v1/\uff0e\uff0e/x",
    "/v1/%EF%BC%8E%EF%BC%8E/x",
    "/v1/\u2025/x",
]

PROTECTED_HEADERS = ["Authorization", "authorization", "api-key", "API-KEY", "Proxy-Authorization", "Cookie",
                     "Host", "Content-Length", "Transfer-Encoding", "OpenAI-Organization", "openai-project",
                     "X-Api-Key", "Ocp-Apim-Subscription-Key"]


def assert_matches_output_schema(result: Dict[str, Any]) -> None:
    Draft7Validator(load_manifest().action(ACTION).output).validate(result)


def only_path(error: InputValidationError) -> str:
    assert len({problem["path"] for problem in error.errors}) == 1, error.errors
    return error.errors[0]["path"]


# --- URLs -------------------------------------------------------------------------------------


def test_defaults_list_models_on_openai(emulator: Emulator, openai_connection: Dict[str, Any]) -> None:
    result = azure_openai_connector.run_action(ACTION, openai_connection, {})

    [request] = emulator.requests
    assert (request.method, request.path, request.query) == ("GET", "/v1/models", {})
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert result["status"] == 200
    assert result["data"]["object"] == "list"
    assert result["content_type"].startswith("application/json")
    assert all(isinstance(value, str) for value in result["headers"].values())
    assert_matches_output_schema(result)


def test_defaults_reach_the_azure_v1_api_without_api_version(runtime: Runtime, emulator: Emulator,
                                                             azure_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, azure_connection, {})

    [request] = emulator.requests
    assert (request.path, request.query) == ("/openai/v1/models", {})
    assert request.headers["api-key"] == API_KEY
    assert result["data"]["object"] == "list"


def test_azure_dated_path_gets_the_connection_api_version(runtime: Runtime, emulator: Emulator,
                                                          azure_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, azure_connection, {
        "url": "/deployments/gpt-4o/chat/completions", "method": "POST",
        "data": {"messages": [{"role": "user", "content": "Hello"}]}})

    [request] = emulator.requests
    assert request.path == "/openai/deployments/gpt-4o/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["content-type"] == "application/json"
    assert result["data"]["choices"][0]["message"]["content"]


def test_azure_path_keeps_its_own_api_version(runtime: Runtime, emulator: Emulator,
                                              azure_connection: Dict[str, Any]) -> None:
    runtime.run(ACTION, azure_connection, {"url": "/models?api-version=2025-04-01-preview"})

    assert emulator.requests[0].query == {"api-version": "2025-04-01-preview"}


def test_query_params_are_added(runtime: Runtime, emulator: Emulator, connection: Dict[str, Any]) -> None:
    runtime.run(ACTION, connection, {"url": "/v1/files", "query_params": {"purpose": "user_data", "limit": 5}})

    assert emulator.requests[0].query == {"purpose": "user_data", "limit": "5"}


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_that_could_leave_the_host_are_refused(runtime: Runtime, emulator: Emulator,
                                                     connection: Dict[str, Any], path: str) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, connection, {"url": path})

    assert only_path(refused.value) == "url"
    assert emulator.request_count == 0


def test_check_refuses_escapes_on_its_own(azure_connection: Dict[str, Any]) -> None:
    connection = Runtime().connection(azure_connection)
    action = load_manifest().action(ACTION)
    inputs = action.inputs.validated({"url": "/v1/%2e%2e/x"})

    assert [problem["path"] for problem in raw_request.check(inputs, connection, action)] == ["url"]


def test_the_handler_refuses_escapes_even_without_check(runtime: Runtime, emulator: Emulator,
                                                        openai_connection: Dict[str, Any]) -> None:
    # A host that skipped the validation step must still not send an escaping path.
    connection = runtime.connection(openai_connection)
    action = load_manifest().action(ACTION)
    step = Step(action=action, connection=connection, client=runtime.client(connection))

    with pytest.raises(InputValidationError):
        raw_request.run(step, action.inputs.complete({"url": "/v1/..%2f..%2fx"}))
    assert emulator.request_count == 0


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROTECTED_HEADERS)
def test_auth_and_connection_headers_cannot_be_set(runtime: Runtime, emulator: Emulator,
                                                   connection: Dict[str, Any], name: str) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, connection, {"headers": {name: "Bearer stolen"}})

    assert only_path(refused.value) == f"headers/{name}"
    assert emulator.request_count == 0


@pytest.mark.parametrize("headers", [{"X-Note": "a\r\nHost: evil"}, {"X-Note": "a\nb"}, {"X Note": "a"},
                                     {"X-Note:": "a"}])
def test_header_injection_is_refused(runtime: Runtime, emulator: Emulator,
                                     openai_connection: Dict[str, Any], headers: Dict[str, str]) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, openai_connection, {"headers": headers})

    assert only_path(refused.value) == f"headers/{next(iter(headers))}"
    assert emulator.request_count == 0


def test_other_headers_are_sent(runtime: Runtime, emulator: Emulator, connection: Dict[str, Any]) -> None:
    runtime.run(ACTION, connection, {"headers": {"X-Trace": "abc", "Accept": "application/json"}})

    assert emulator.requests[0].headers["x-trace"] == "abc"


# --- bodies -----------------------------------------------------------------------------------


def test_multipart_upload_arrives_with_names_bytes_and_fields(runtime: Runtime, emulator: Emulator,
                                                              connection: Dict[str, Any]) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    result = runtime.run(ACTION, connection, {
        "url": "/v1/files", "method": "POST",
        "form_data": {"purpose": "user_data"},
        "file_data": {"file": "line one\nline two ✓\n", "image": data_url},
        "file_data_file_names": {"file": "notes.txt", "image": "pixel.png"}})

    [request] = emulator.requests
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.form == {"purpose": "user_data"}
    assert request.files == [
        {"field": "file", "filename": "notes.txt", "content_type": "text/plain",
         "data": "line one\nline two ✓\n".encode()},
        {"field": "image", "filename": "pixel.png", "content_type": "image/png", "data": PNG_BYTES},
    ]
    assert result["data"]["filename"] == "notes.txt"


def test_file_names_default_to_the_keys(runtime: Runtime, emulator: Emulator,
                                        openai_connection: Dict[str, Any]) -> None:
    runtime.run(ACTION, openai_connection, {
        "url": "/v1/files", "method": "POST", "form_data": {"purpose": "batch"},
        "file_data": {"file": "data:,plain%20text"}})

    [part] = emulator.requests[0].files
    assert (part["filename"], part["data"]) == ("file", b"plain text")


def test_form_data_alone_is_still_multipart(runtime: Runtime, emulator: Emulator,
                                            openai_connection: Dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):  # the emulator wants a file; the point is how the form went
        runtime.run(ACTION, openai_connection, {"url": "/v1/files", "method": "POST",
                                                "form_data": {"purpose": "batch"}})

    [request] = emulator.requests
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert request.form == {"purpose": "batch"}


def test_file_name_keys_must_match_the_file_keys(runtime: Runtime, emulator: Emulator,
                                                 openai_connection: Dict[str, Any]) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, openai_connection, {
            "url": "/v1/files", "method": "POST", "file_data": {"file": "x", "extra": "y"},
            "file_data_file_names": {"file": "a.txt", "other": "b.txt"}})

    assert only_path(refused.value) == "file_data_file_names"
    message = refused.value.errors[0]["message"]
    assert "extra: other" in message and "missing: extra" in message
    assert emulator.request_count == 0


@pytest.mark.parametrize("inputs, path", [
    ({"method": "POST", "data": {"a": 1}, "form_data": {"b": "c"}}, "data"),
    ({"method": "POST", "data": "text", "file_data": {"f": "x"}}, "data"),
    ({"method": "GET", "data": {"a": 1}}, "data"),
    ({"method": "HEAD", "data": "text"}, "data"),
    ({"method": "GET", "file_data": {"f": "x"}}, "file_data"),
    ({"method": "POST", "file_data": {"f": "data:image/png;base64,@@not base64@@"}}, "file_data/f"),
    ({"method": "POST", "file_data": {"f": "x"}, "headers": {"Content-Type": "text/plain"}},
     "headers/Content-Type"),
])
def test_unsendable_bodies_are_refused(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any],
                                       inputs: Dict[str, Any], path: str) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, openai_connection, {"url": "/v1/files", **inputs})

    assert only_path(refused.value) == path
    assert emulator.request_count == 0


def test_string_data_is_sent_as_plain_text(runtime: Runtime, emulator: Emulator,
                                           openai_connection: Dict[str, Any]) -> None:
    with pytest.raises(ApiError):  # the emulator wants JSON; the point is what was sent
        runtime.run(ACTION, openai_connection, {"url": "/v1/chat/completions", "method": "POST",
                                                "data": "héllo"})

    [request] = emulator.requests
    assert request.headers["content-type"] == "text/plain; charset=utf-8"
    assert request.body == "héllo".encode()


def test_string_data_keeps_the_users_content_type(runtime: Runtime, emulator: Emulator,
                                                  openai_connection: Dict[str, Any]) -> None:
    body = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}'
    result = runtime.run(ACTION, openai_connection, {
        "url": "/v1/chat/completions", "method": "POST", "data": body,
        "headers": {"content-type": "application/json"}})

    [request] = emulator.requests
    assert request.body == body.encode()
    assert request.headers["content-type"] == "application/json"
    assert result["data"]["object"] == "chat.completion"


# --- response types ---------------------------------------------------------------------------


def test_binary_comes_back_as_base64_with_its_content_type(runtime: Runtime, emulator: Emulator,
                                                           connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, connection, {"url": "/v1/files/file-emulator-binary/content",
                                              "response_type": "binary"})

    assert base64.b64decode(result["data"]) == BINARY_FILE
    assert result["content_type"] == "application/octet-stream"
    assert_matches_output_schema(result)


def test_text_comes_back_decoded(runtime: Runtime, emulator: Emulator, connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, connection, {"url": "/v1/files/file-emulator-text/content",
                                              "response_type": "text"})

    assert result["data"] == "hello from the emulator\n"
    assert result["content_type"] == "text/plain; charset=utf-8"


def test_json_expected_but_not_json_is_an_invalid_response(runtime: Runtime, emulator: Emulator,
                                                           openai_connection: Dict[str, Any]) -> None:
    with pytest.raises(InvalidResponseError):
        runtime.run(ACTION, openai_connection, {"url": "/v1/files/file-emulator-binary/content"})


def test_response_cookies_are_redacted(runtime: Runtime, emulator: Emulator,
                                       openai_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.status(200, "ok", headers={"Set-Cookie": "session=s3cr3t; HttpOnly"}))

    result = runtime.run(ACTION, openai_connection, {})

    cookies = [value for name, value in result["headers"].items() if name.lower() == "set-cookie"]
    assert cookies == ["***"]


# --- retries and timeouts ---------------------------------------------------------------------


RETRY_INPUTS = {"max_retries": 2, "retry_delay_ms": 100}


def test_fixed_retry_delay(runtime: Runtime, emulator: Emulator, recorded_sleep: RecordedSleep,
                           connection: Dict[str, Any]) -> None:
    emulator.script(Fault.status(500), times=2)

    result = runtime.run(ACTION, connection, RETRY_INPUTS)

    assert result["status"] == 200
    assert emulator.request_count == 3
    assert recorded_sleep.waits == [0.1, 0.1]


def test_exponential_retry_delay(emulator: Emulator, recorded_sleep: RecordedSleep,
                                 openai_connection: Dict[str, Any]) -> None:
    # Exponential backoff keeps the HTTP layer's jitter; a fixed random draw makes it exact here.
    runtime = Runtime(hooks=extension_manager().hook, sleep=recorded_sleep, random_fraction=lambda: 0.0)
    emulator.script(Fault.status(500), times=2)
    try:
        result = runtime.run(ACTION, openai_connection, {**RETRY_INPUTS, "use_exponential_backoff": True})
    finally:
        runtime.close()

    assert result["status"] == 200
    assert recorded_sleep.waits == [0.1, 0.2]


def test_retries_run_out(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.status(503), times=3)

    with pytest.raises(ServerError) as failed:
        runtime.run(ACTION, openai_connection, RETRY_INPUTS)
    assert failed.value.attempts == 3 and emulator.request_count == 3


def test_no_retries_by_default(runtime: Runtime, emulator: Emulator, recorded_sleep: RecordedSleep,
                               connection: Dict[str, Any]) -> None:
    emulator.script(Fault.status(500))

    with pytest.raises(ServerError):
        runtime.run(ACTION, connection, {})
    assert emulator.request_count == 1
    assert recorded_sleep.waits == []


def test_retry_all_errors_retries_a_bad_request(runtime: Runtime, emulator: Emulator,
                                                openai_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.bad_request(), times=1)

    result = runtime.run(ACTION, openai_connection, {"max_retries": 1, "retry_all_errors": True})

    assert result["status"] == 200 and emulator.request_count == 2


def test_a_bad_request_is_not_retried_otherwise(runtime: Runtime, emulator: Emulator,
                                                openai_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.bad_request(), times=1)

    with pytest.raises(BadRequestError):
        runtime.run(ACTION, openai_connection, {"max_retries": 1})
    assert emulator.request_count == 1


def test_timeout_in_milliseconds(runtime: Runtime, emulator: Emulator,
                                 openai_connection: Dict[str, Any]) -> None:
    # The emulator holds the answer far longer than the 1 ms allowed; stopping it ends the wait.
    emulator.script(Fault.slow(30))

    with pytest.raises(ApiTimeoutError):
        runtime.run(ACTION, openai_connection, {"timeout": 1})


# --- debug logging and redirects --------------------------------------------------------------


def test_debug_request_logs_one_line_without_secrets(runtime: Runtime, emulator: Emulator,
                                                     connection: Dict[str, Any],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="azure_openai_connector")
    runtime.run(ACTION, connection, {
        "url": "/v1/files", "method": "POST", "debug_request": True,
        "headers": {"X-Trace": "abc"},
        "form_data": {"purpose": "user_data", "note": f"key is {API_KEY}"},
        "file_data": {"file": "SECRET-FILE-BYTES " * 500}})

    [record] = [r for r in caplog.records if r.name == "azure_openai_connector.actions.raw_request"]
    line = record.getMessage()
    assert record.levelno == logging.INFO and "\n" not in line
    assert API_KEY not in caplog.text
    assert "POST" in line and "/v1/files" in line and "X-Trace" in line
    auth_header = "Authorization" if connection.get("is_openai_key") else "api-key"
    assert f'"{auth_header}": "***"' in line
    assert "SECRET-FILE-BYTES" not in line and "9000 bytes" in line


def test_debug_request_bounds_the_body_excerpt(runtime: Runtime, emulator: Emulator,
                                               openai_connection: Dict[str, Any],
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="azure_openai_connector")
    with pytest.raises(ApiError):
        runtime.run(ACTION, openai_connection, {"url": "/v1/chat/completions", "method": "POST",
                                                "debug_request": True, "data": {"text": "x" * 50_000}})

    [record] = [r for r in caplog.records if r.name == "azure_openai_connector.actions.raw_request"]
    assert 2048 < len(record.getMessage()) < 4096


def test_no_debug_line_unless_asked(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any],
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="azure_openai_connector")
    runtime.run(ACTION, openai_connection, {})

    assert not [r for r in caplog.records if r.name == "azure_openai_connector.actions.raw_request"]


def test_redirect_to_another_host_is_not_followed(runtime: Runtime, emulator: Emulator,
                                                  connection: Dict[str, Any]) -> None:
    emulator.script(Fault.redirect("http://127.0.0.2:9/steal"))

    with pytest.raises(RedirectNotFollowedError) as refused:
        runtime.run(ACTION, connection, {"max_retries": 3, "retry_all_errors": True})

    assert refused.value.status == 307
    assert emulator.request_count == 1
