"""Hostile inputs and a hostile upstream: typed refusals, bounded memory and time, keys hidden."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azure_openai_connector import hookimpl
from azure_openai_connector.errors import (
    ApiTimeoutError,
    BadRequestError,
    ConnectorError,
    ContentFilterError,
    InputValidationError,
    InvalidResponseError,
    RateLimitError,
)
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.runtime import Runtime
from azure_openai_connector.validation import MAX_JSON_DEPTH, fits_json, json_problems_walk

from hostile_upstream import HostileUpstream
from support import API_KEY, RecordedSleep, registered

# A key holding characters that encode differently in URLs and JSON.
ODD_KEY = 'k3y+/with="quote\\and%25-0123456789'
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def upstream() -> Iterator[HostileUpstream]:
    with HostileUpstream(API_KEY) as server:
        yield server


@pytest.fixture
def hostile(upstream: HostileUpstream) -> Dict[str, Any]:
    return {"api_key": API_KEY, "is_openai_key": True, "endpoint": upstream.url}


@pytest.fixture
def quick() -> Iterator[Runtime]:
    runtime = Runtime(sleep=RecordedSleep())
    yield runtime
    runtime.close()


def _raw(path: str, **inputs: Any) -> Dict[str, Any]:
    return {"url": path, "method": "GET", **inputs}


def _strict(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


# --- bad input: typed refusals with their paths, nothing sent ------------------------------------

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("inputs, path, reason", [
    ({**CHAT, "temperature": float("nan")}, "temperature", "finite"),
    ({**CHAT, "temperature": float("inf")}, "temperature", "finite"),
    ({"messages": [{"role": "user", "content": "a\ud800b"}]}, "messages/0/content", "surrogate"),
    ({**CHAT, "max_tokens": 10 ** 4400}, "max_tokens", "4300 digits"),
])
def test_unsendable_chat_inputs_are_refused_with_their_path(emulator, azure_connection, quick,
                                                             inputs, path, reason):
    with pytest.raises(InputValidationError) as caught:
        quick.run("create_chat_completion", azure_connection, inputs)
    assert [problem["path"] for problem in caught.value.errors] == [path]
    assert reason in caught.value.errors[0]["message"]
    assert emulator.requests == []


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("inputs, path", [
    ({"method": "POST", "data": {"x": float("nan")}}, "data/x"),
    ({"method": "POST", "data": {1: "one"}}, "data"),
    ({"method": "POST", "data": {"deep": _nested(1000)}}, "data/deep/" + "/".join(["0"] * 98)),
    ({"headers": {"X-Note": "\udfff"}}, "headers/X-Note"),
    ({"query_params": {"q": "\ud800"}}, "query_params/q"),
    ({"method": "POST", "form_data": {"field": "\ud800"}}, "form_data/field"),
])
def test_unsendable_raw_request_inputs_are_refused_with_their_path(emulator, azure_connection, quick,
                                                                   inputs, path):
    with pytest.raises(InputValidationError) as caught:
        quick.run("raw_request", azure_connection, _raw("/v1/models", **inputs))
    assert [problem["path"] for problem in caught.value.errors] == [path]
    assert emulator.requests == []


class _Text(str):
    """A str subclass: the quick pass must leave anything but exact JSON types to the walk."""


_awkward_scalars = (st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6)
                    | st.sampled_from([4300, -4300, 4299]).map(lambda digits: (10 ** abs(digits)) * (digits // abs(digits)))
                    | st.sampled_from([float("nan"), float("inf"),
                                       -float("inf"), 1.5, "a\ud800b", "\udfff", "caf\u00e9", _Text("x")])
                    | st.text(max_size=6))
_awkward_keys = st.text(max_size=4) | st.sampled_from([1, 2.5, None, "\ud800", ("t",)])
_awkward_values = st.recursive(
    _awkward_scalars,
    lambda inner: (st.lists(inner, max_size=3) | st.dictionaries(_awkward_keys, inner, max_size=3)
                   | st.tuples(inner)),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(value=_awkward_values, depth=st.sampled_from([0, MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH]))
def test_the_quick_json_pass_never_lets_a_problem_the_walk_finds_through(value, depth):
    """fits_json answers True only for values the full walk finds nothing wrong in."""
    for _ in range(depth):
        value = [value]
    if fits_json(value):
        assert json_problems_walk(value) == []


def test_the_quick_json_pass_accepts_an_ordinary_chat_input():
    assert fits_json({"messages": [{"role": "user", "content": "caf\u00e9 \u2603"}], "temperature": 0.5, "n": 1})


def test_an_empty_problem_list_is_never_an_input_validation_error():
    with pytest.raises(ValueError):
        InputValidationError([])


def test_the_cli_refuses_inputs_nested_1000_deep(tmp_path):
    document = tmp_path / "inputs.json"
    document.write_text('{"data": ' + "[" * 1000 + "]" * 1000 + "}")
    done = subprocess.run(
        [sys.executable, "-m", "azure_openai_connector.cli", "run", "raw_request",
         "--connection", json.dumps({"api_key": API_KEY, "endpoint": "http://127.0.0.1:9"}),
         "--inputs", f"@{document}"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stderr)["error"]
    assert error["errors"] == [{"path": "--inputs", "message": "is JSON nested too deeply"}]


class RaisingObserver:
    @hookimpl
    def http_request_started(self, request: Any) -> None:
        raise RuntimeError("observer bug")


class NonStringAuth:
    @hookimpl
    def request_auth_headers(self, connection: Any) -> Any:
        return {"Authorization": 12345}


@pytest.mark.parametrize("plugin, name, says", [
    (RaisingObserver(), "broken-observer", "failed in http_request_started: RuntimeError"),
    (NonStringAuth(), "broken-auth", "returned auth headers that are not"),
])
def test_a_broken_extension_plugin_fails_the_step_naming_it(emulator, azure_connection, plugin, name, says):
    runtime = Runtime(hooks=extension_manager().hook, sleep=RecordedSleep())
    try:
        with registered(plugin, name):
            with pytest.raises(ConnectorError) as caught:
                runtime.run("create_chat_completion", azure_connection, CHAT)
    finally:
        runtime.close()
    assert type(caught.value) is ConnectorError
    assert f"The extension plugin {name!r}" in str(caught.value)
    assert says in str(caught.value)


# --- bounded memory and time --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("route", ["huge", "huge-chunked", "gzip-bomb"])
def test_an_oversized_answer_is_refused_with_bounded_memory(upstream, hostile, route):
    limit = 4 * 1024 * 1024
    runtime = Runtime(max_response_bytes=limit)
    if route == "gzip-bomb":
        upstream.bomb()  # built before measuring: it is the server's memory, not the client's
    tracemalloc.start()
    try:
        with pytest.raises(InvalidResponseError) as caught:
            runtime.run("raw_request", hostile, _raw(f"/{route}", response_type="binary"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        runtime.close()
    assert caught.value.code == "response_too_large"
    assert f"limit of {limit} bytes" in caught.value.message
    assert peak < 4 * limit  # the body is 256 MB (inflated, for the bomb): never held whole


def test_raw_request_takes_its_own_size_limit(upstream, hostile, quick):
    with pytest.raises(InvalidResponseError) as caught:
        quick.run("raw_request", hostile, _raw("/echo-key-json", max_response_bytes=10))
    assert caught.value.code == "response_too_large"
    assert "limit of 10 bytes" in caught.value.message


@pytest.mark.slow
def test_a_trickling_answer_cannot_outlive_the_step_timeout(upstream, hostile, quick):
    # The trickle lasts 30 s with each read under a second: only a total deadline ends it (the
    # step's 2 s read timeout plus the connect timeout), before the body is complete.
    with pytest.raises(ApiTimeoutError) as caught:
        quick.run("raw_request", hostile, _raw("/trickle", timeout=2000, response_type="text"))
    assert caught.value.message == "The service did not finish its answer within 7 s"


def test_an_infinite_retry_after_is_no_wait_and_output_stays_strict_json(upstream, hostile, quick):
    with pytest.raises(RateLimitError) as caught:
        quick.run("raw_request", hostile, _raw("/retry-after-infinite"))
    assert caught.value.retry_after is None
    _strict(caught.value.to_dict())


@pytest.mark.parametrize("route, code", [
    ("deep-json", "invalid_json"), ("nan-json", "invalid_json"),
])
def test_answers_that_are_not_strict_json_are_invalid_responses(upstream, hostile, quick, route, code):
    with pytest.raises(InvalidResponseError) as caught:
        quick.run("raw_request", hostile, _raw(f"/{route}"))
    assert caught.value.code == code


def test_a_deeply_nested_error_body_is_still_a_typed_error(upstream, hostile, quick):
    with pytest.raises(BadRequestError):
        quick.run("raw_request", hostile, _raw("/deep-error"))


@pytest.mark.parametrize("route", ["index-a-list", "content-a-number"])
def test_chat_answers_that_break_the_contract_are_invalid_responses(upstream, quick, route):
    connection = {"api_key": API_KEY, "is_openai_key": True, "endpoint": f"{upstream.url}/{route}"}
    with pytest.raises(InvalidResponseError) as caught:
        quick.run("create_chat_completion", connection, CHAT)
    assert caught.value.code == "missing_choices"


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_descriptors_stay_flat_over_100_distinct_connections(emulator):
    runtime = Runtime()
    try:
        for number in range(5):
            runtime.run("raw_request", {"api_key": API_KEY, "endpoint": emulator.url, "organization": f"o{number}"},
                        _raw("/v1/models"))
        before = _open_descriptors()
        for number in range(100):
            runtime.run("raw_request", {"api_key": API_KEY, "endpoint": emulator.url,
                                        "organization": f"org{number}"}, _raw("/v1/models"))
        after = _open_descriptors()
    finally:
        runtime.close()
    # 32 cached clients keep one idle socket each at most; evicted ones are closed.
    assert after - before <= 32


def test_splitting_packs_whole_words_greedily():
    from azure_openai_connector.actions.summarize_text import split_text

    text = "word " * 200_000
    chunks = split_text(text, 100_000)
    assert [len(chunk) for chunk in chunks] == [99_999] * 10
    assert " ".join(chunks) == text.strip()


@pytest.mark.slow
def test_splitting_20_million_characters_into_1_million_chunks_finishes_in_bounded_time():
    # Copying the chunk per word cost about 381 s of CPU here; linear packing takes seconds.
    script = ("from azure_openai_connector.actions.summarize_text import split_text\n"
              "print(len(split_text('word ' * 4_000_000, 1_000_000)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "20"


# --- keys hidden everywhere ---------------------------------------------------------------------

def test_a_key_echoed_in_every_error_field_is_hidden(upstream, hostile, quick):
    with pytest.raises(ContentFilterError) as caught:
        quick.run("raw_request", hostile, _raw("/echo-key"))
    error = caught.value
    shown = json.dumps(error.to_dict()) + str(error) + repr(error) + repr(vars(error))
    assert API_KEY not in shown
    assert (error.code, error.param, error.error_type, error.request_id) == (
        "code-***", "param-***", "type-***", "req-***")
    assert error.details == {"content_filter_results": {"note": "***"}, "revised_prompt": "***"}


def test_a_key_echoed_in_a_result_is_hidden_in_json_and_binary(upstream, hostile, quick):
    result = quick.run("raw_request", hostile, _raw("/echo-key-json"))
    assert result["data"] == {"echo": "***", "encoded": "eA=="}
    binary = quick.run("raw_request", hostile, _raw("/echo-key-binary", response_type="binary"))
    import base64
    assert base64.b64decode(binary["data"]) == b"\x00\x01***\xff"


def test_encoded_forms_of_a_key_are_redacted():
    from urllib.parse import quote, quote_plus

    from azure_openai_connector.redaction import redact

    for form in (ODD_KEY, quote(ODD_KEY, safe=""), quote_plus(ODD_KEY), json.dumps(ODD_KEY)[1:-1]):
        assert redact(f"before {form} after", [ODD_KEY]) == "before *** after"


def test_a_key_in_query_params_never_reaches_urllib3_logs(emulator, caplog):
    connection = {"api_key": ODD_KEY, "endpoint": emulator.url}
    runtime = Runtime(sleep=RecordedSleep())
    try:
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(ConnectorError):
                runtime.run("raw_request", connection,
                            _raw("/v1/models", query_params={"leak": ODD_KEY}, debug_request=True))
    finally:
        runtime.close()
    from urllib.parse import quote, quote_plus
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/v1/models" in logged
    for form in (ODD_KEY, quote(ODD_KEY, safe=""), quote_plus(ODD_KEY), json.dumps(ODD_KEY)[1:-1]):
        assert form not in logged


def test_an_unknown_connection_field_named_after_the_key_is_hidden(emulator, quick):
    connection = {"api_key": API_KEY, "endpoint": emulator.url, API_KEY: "x"}
    with pytest.raises(InputValidationError) as caught:
        quick.run("create_chat_completion", connection, CHAT)
    assert API_KEY not in json.dumps(caught.value.to_dict())
    assert {"path": "connection/***", "message": "is not a known field"} in caught.value.errors


# --- endpoint policy ----------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint, reason", [
    ("https://169.254.169.254", "not a public Azure OpenAI"),
    ("https://10.0.0.7", "not a public Azure OpenAI"),
    ("http://localhost:8080", "not a public Azure OpenAI"),
    ("https://gateway.example.invalid", "not a public Azure OpenAI"),
])
def test_a_public_policy_refuses_hosts_outside_the_public_services(emulator, endpoint, reason):
    runtime = Runtime(endpoint_policy="public")
    with pytest.raises(InputValidationError) as caught:
        runtime.run("create_chat_completion", {"api_key": API_KEY, "endpoint": endpoint}, CHAT)
    [problem] = caught.value.errors
    assert problem["path"] == "connection/endpoint"
    assert reason in problem["message"]


@pytest.mark.parametrize("host, address", [
    ("localhost", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("169.254.169.254", "169.254.169.254"),
    ("192.168.1.1", "192.168.1.1"),
])
def test_an_allowed_host_is_still_refused_when_it_resolves_to_a_non_public_address(emulator, host, address):
    runtime = Runtime(endpoint_policy="public", allowed_hosts=[host])
    scheme = "http" if host in ("localhost", "127.0.0.2") else "https"
    with pytest.raises(InputValidationError) as caught:
        runtime.run("create_chat_completion", {"api_key": API_KEY, "endpoint": f"{scheme}://{host}"}, CHAT)
    [problem] = caught.value.errors
    assert problem == {"path": "connection/endpoint",
                       "message": f"resolves to {address}, which is not a public address"}
    assert emulator.requests == []


def test_the_policy_comes_from_the_environment(emulator, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_CONNECTOR_ENDPOINT_POLICY", "public")
    runtime = Runtime()
    with pytest.raises(InputValidationError):
        runtime.run("create_chat_completion", {"api_key": API_KEY, "endpoint": emulator.url}, CHAT)
    assert emulator.requests == []
    monkeypatch.delenv("AZURE_OPENAI_CONNECTOR_ENDPOINT_POLICY")
    open_runtime = Runtime()
    try:
        assert open_runtime.run("create_chat_completion", {"api_key": API_KEY, "endpoint": emulator.url}, CHAT)
    finally:
        open_runtime.close()


def test_an_endpoint_with_a_backslash_is_always_refused(quick):
    with pytest.raises(InputValidationError) as caught:
        quick.run("create_chat_completion", {"api_key": API_KEY, "endpoint": "https://localhost\\.evil.com"}, CHAT)
    assert caught.value.errors == [{"path": "connection/endpoint", "message": "must not contain a backslash"}]


# --- playground ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def playground() -> Iterator[Any]:
    from azure_openai_connector.playground.server import Playground

    with Playground(environ={}) as pg:
        yield pg


def _playground_call(pg: Any, path: str, body: bytes, headers: Dict[str, str]) -> Any:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", pg.port, timeout=60)
    try:
        connection.request("POST" if body else "GET", path, body=body or None,
                           headers={"Host": f"127.0.0.1:{pg.port}", "Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


RUN = json.dumps({"action": "create_chat_completion", "connection": {}, "inputs": {}}).encode()


def test_the_playground_cookie_alone_does_not_run_a_step(playground):
    cookie = {"Cookie": f"aoc_playground_{playground.port}={playground.token}"}
    status, body = _playground_call(playground, "/api/run", RUN, cookie)
    assert status == 403
    assert json.loads(body)["error"]["message"] == "running a step needs the X-Playground-Token header"
    status, _ = _playground_call(playground, "/api/run", RUN, {**cookie, "X-Playground-Token": playground.token})
    assert status == 200


def test_the_page_carries_the_token_for_its_header(playground):
    cookie = {"Cookie": f"aoc_playground_{playground.port}={playground.token}"}
    status, page = _playground_call(playground, "/", b"", cookie)
    assert status == 200
    assert f'<meta name="playground-token" content="{playground.token}">'.encode() in page


def test_a_deeply_nested_playground_body_is_a_400(playground):
    deep = b'{"action": "raw_request", "inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    status, body = _playground_call(playground, "/api/run", deep, {"X-Playground-Token": playground.token})
    assert status == 400
    assert json.loads(body)["error"]["message"] == "the body is not valid JSON"
