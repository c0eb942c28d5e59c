"""The API key, gateway keys (and any token an auth plugin supplies) travel only in their header, only to the
configured host. (Tokens from the built-in Entra ID plugin: tests/test_keyless.py, with real azure-identity.)

It never appears in: any log record at DEBUG (ours and urllib3's), raw_request's `debug_request`
line, an error's str / repr / to_dict / formatted traceback, the CLI's stderr or stdout for every
kind of error, nor in a request to any host other than the configured one (redirects are not
followed, raw-request paths cannot leave the host, endpoints must be https unless loopback).
(The playground's responses are covered by the playground's own tests.)

The emulator and the servers standing for "another host" run on 127.0.0.x; nothing else is used.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from azure_openai_connector import errors, hookimpl
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.runtime import Runtime

from support import API_KEY, RecordedSleep

ENTRA_TOKEN = "entra-token-9d8c7b6a5f4e3d2c1b0a"
SECRETS = (API_KEY, ENTRA_TOKEN)
ACTIONS = ("create_chat_completion", "create_image", "create_multiple_chat_completions", "summarize_text",
           "raw_request")
CLI_TIMEOUT_S = 60


def leaks(text: str) -> List[str]:
    return [secret for secret in SECRETS if secret in text]


def formatted(records: List[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in records)


def error_texts(error: BaseException) -> List[str]:
    """Every way a host could show an error: str, repr, its JSON, and the whole traceback (chained
    exceptions, such as a requests error quoting a URL, included)."""
    texts = [str(error), repr(error),
             "".join(traceback.format_exception(type(error), error, error.__traceback__))]
    if isinstance(error, errors.ConnectorError):
        texts.append(json.dumps(error.to_dict()))
    return texts


class OtherHost:
    """A server on 127.0.0.2 standing for any host that is not the configured one."""

    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, Dict[str, str]]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                owner.seen.append((self.command, self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.address = f"127.0.0.2:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(api_key=API_KEY) as emulator:
        yield emulator


@pytest.fixture
def emulator(shared_emulator: Emulator) -> Iterator[Emulator]:
    """One emulator for the module, its requests and scripted faults forgotten around each test."""
    shared_emulator.reset()
    yield shared_emulator
    shared_emulator.reset()


@pytest.fixture
def other_host() -> Iterator[OtherHost]:
    host = OtherHost()
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def quick_runtime() -> Iterator[Runtime]:
    runtime = Runtime(hooks=extension_manager().hook, sleep=RecordedSleep(), read_timeout=5.0)
    try:
        yield runtime
    finally:
        runtime.close()


def run_any(runtime: Runtime, action: str, connection: Dict[str, Any], inputs: Dict[str, Any]) -> List[str]:
    """Run a step; the texts a host could show of its outcome."""
    try:
        return [json.dumps(runtime.run(action, connection, inputs))]
    except errors.ConnectorError as error:
        return error_texts(error)


RAW_CHAT = {"url": "/deployments/d/chat/completions", "method": "POST",
            "data": {"messages": [{"role": "user", "content": "hi"}]}}


def inputs_for(action: str, connection: Dict[str, Any]) -> Dict[str, Any]:
    if action == "raw_request":
        return {**RAW_CHAT, "url": "/v1/chat/completions", "data": {"model": "m", **RAW_CHAT["data"]}} \
            if connection.get("is_openai_key") else dict(RAW_CHAT)
    if action == "create_multiple_chat_completions":
        return {"prompts": ["one", "two"]}
    return {}


# --- DEBUG logs, for every action, with and without faults --------------------------------------------

LOG_FAULTS = [None, Fault.rate_limit(retry_after_ms=1), Fault.status(500), Fault.unauthorized(),
              Fault.status(401, message=f"Incorrect API key provided: {API_KEY}"), Fault.drop(),
              Fault.malformed(), Fault.content_filter_prompt(), Fault.redirect(f"http://127.0.0.2:9/?k={API_KEY}")]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("fault", LOG_FAULTS, ids=lambda f: "ok" if f is None else f"{f.kind}-{f.status_code}")
def test_debug_logs_hold_no_key(action, fault, emulator, connection, quick_runtime, caplog):
    if fault is not None:
        emulator.script(fault, times=2)
    caplog.set_level(logging.DEBUG)
    texts = run_any(quick_runtime, action, connection, inputs_for(action, connection))
    log = formatted(caplog.records)
    assert "headers=" in log, "the request was logged at DEBUG (with its headers, redacted)"
    assert leaks(log) == [] and leaks("\n".join(texts)) == []


class EntraTokens:
    @hookimpl
    def request_auth_headers(self, connection: Any) -> Dict[str, str]:
        return {"Authorization": f"Bearer {ENTRA_TOKEN}"}


@pytest.fixture
def entra_plugin() -> Iterator[None]:
    manager = extension_manager()
    name = "test-secrets-entra"
    manager.register(EntraTokens(), name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)


@pytest.mark.parametrize("fault", [None, Fault.status(500), Fault.status(401, message=f"Bad token {ENTRA_TOKEN}"),
                                   Fault.drop()], ids=["ok", "500", "401-echo", "drop"])
def test_a_plugin_token_is_a_secret_too(fault, entra_plugin, quick_runtime, caplog):
    with Emulator(api_key="unused-key-0000", bearer_tokens=(ENTRA_TOKEN,)) as emulator:
        if fault is not None:
            emulator.script(fault, times=3)
        caplog.set_level(logging.DEBUG)
        connection = {"api_key": "unused-key-0000", "organization": "contoso", "endpoint": emulator.url}
        texts = run_any(quick_runtime, "create_chat_completion", connection, {})
        assert emulator.requests[0].headers.get("authorization") == f"Bearer {ENTRA_TOKEN}"
    assert leaks(formatted(caplog.records) + "\n".join(texts)) == []


GATEWAY_KEY = "apim-subscription-3c4d5e6f7a8b"
GATEWAY_QUERY_KEY = "gateway-query-secret-1a2b3c"


@pytest.mark.parametrize("fault", [None, Fault.status(500), Fault.status(401, message=f"Bad key {GATEWAY_KEY}"),
                                   Fault.drop(), "redirect-to-other-host"],
                         ids=["ok", "500", "401-echo", "drop", "redirect"])
@pytest.mark.parametrize("action", ACTIONS)
def test_gateway_headers_and_query_values_are_secrets_too(action, fault, emulator, azure_connection,
                                                           quick_runtime, caplog, other_host):
    if fault == "redirect-to-other-host":
        fault = Fault.redirect(f"http://{other_host.address}/steal")
    if fault is not None:
        emulator.script(fault, times=3)
    caplog.set_level(logging.DEBUG)
    connection = {**azure_connection, "gateway_headers": {"Ocp-Apim-Subscription-Key": GATEWAY_KEY},
                  "gateway_query": {"subscription-key": GATEWAY_QUERY_KEY}}
    texts = run_any(quick_runtime, action, connection, inputs_for(action, connection))
    assert emulator.requests[0].headers.get("ocp-apim-subscription-key") == GATEWAY_KEY
    assert emulator.requests[0].query.get("subscription-key") == GATEWAY_QUERY_KEY
    shown = formatted(caplog.records) + "\n".join(texts)
    assert [secret for secret in (GATEWAY_KEY, GATEWAY_QUERY_KEY, API_KEY) if secret in shown] == []
    assert other_host.seen == []


# --- debug_request --------------------------------------------------------------------------------


@pytest.mark.parametrize("inputs", [
    {"url": "/v1/models", "query_params": {"api-key": API_KEY}},
    {"url": f"/v1/models?key={API_KEY}"},
    {"url": f"/v1/files/{API_KEY}"},
    {"url": "/v1/models", "headers": {"X-Echo": API_KEY, "X-Other": f"Bearer {API_KEY}"}},
    {"url": "/v1/chat/completions", "method": "POST", "data": {"key": API_KEY, "nested": [API_KEY]}},
    {"url": "/v1/chat/completions", "method": "POST", "data": f"key={API_KEY}\nline two"},
    {"url": "/v1/files", "method": "POST", "form_data": {"purpose": "assistants", API_KEY: API_KEY},
     "file_data": {"file": f"the key is {API_KEY}"}, "file_data_file_names": {"file": f"{API_KEY}.txt"}},
], ids=["query-param", "query-in-url", "path", "headers", "json-body", "text-body", "multipart"])
def test_debug_request_output_holds_no_key(inputs, emulator, connection, quick_runtime, caplog):
    caplog.set_level(logging.DEBUG)
    try:
        quick_runtime.run("raw_request", connection, {**inputs, "debug_request": True})
        texts = ["result"]
    except errors.ConnectorError as error:
        texts = error_texts(error)
    [line] = [record.getMessage() for record in caplog.records if record.getMessage().startswith("raw request ")]
    assert "***" in line
    assert leaks(line) == []
    assert leaks(formatted(caplog.records)) == [], "urllib3's request lines quote the URL too"
    if texts[0] != "result":
        # An answer's body is the service's data, handed back as is; an error never shows the key.
        assert leaks("\n".join(texts)) == []


def test_debug_request_line_names_the_request_and_hides_auth(emulator, azure_connection, quick_runtime, caplog):
    caplog.set_level(logging.INFO)
    quick_runtime.run("raw_request", azure_connection, {**RAW_CHAT, "debug_request": True})
    [line] = [record.getMessage() for record in caplog.records if record.getMessage().startswith("raw request ")]
    assert "POST" in line and "/openai/deployments/d/chat/completions" in line
    assert '"api-key": "***"' in line
    assert "\n" not in line


# --- errors of every kind: str, repr, to_dict, traceback ------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


ERROR_CASES = [
    ("bad_request", Fault.bad_request(f"Your key {API_KEY} is fine but the body is not"), errors.BadRequestError),
    ("authentication", Fault.status(401, message=f"Incorrect API key provided: {API_KEY}"),
     errors.AuthenticationError),
    ("permission_denied", Fault.status(403, message=f"Key {API_KEY} may not do this"), errors.PermissionDeniedError),
    ("not_found", Fault.status(404, message=f"No deployment for {API_KEY}"), errors.NotFoundError),
    ("rate_limit", Fault.rate_limit(retry_after_ms=1), errors.RateLimitError),
    ("quota", Fault.insufficient_quota(), errors.QuotaExceededError),
    ("content_filter", Fault.content_filter_prompt(), errors.ContentFilterError),
    ("server_error", Fault.status(500, message=f"boom {API_KEY}"), errors.ServerError),
    ("invalid_response", Fault.malformed(), errors.InvalidResponseError),
    ("redirect", Fault.redirect(f"http://127.0.0.2:9/steal?api-key={API_KEY}"), errors.RedirectNotFollowedError),
    ("connection", Fault.drop(), errors.ApiConnectionError),
    ("timeout", Fault.slow(2), errors.ApiTimeoutError),
]


@pytest.mark.parametrize("name, fault, error_class", ERROR_CASES, ids=[case[0] for case in ERROR_CASES])
def test_every_error_type_hides_the_key(name, fault, error_class, emulator, connection):
    # The key is in the URL's query as well, so transport errors that quote the URL are tested too.
    runtime = Runtime(sleep=RecordedSleep(), read_timeout=0.2)
    emulator.script(fault, times=None)
    inputs = {**inputs_for("raw_request", connection), "query_params": {"api-key": API_KEY}, "max_retries": 2}
    try:
        with pytest.raises(error_class) as raised:
            runtime.run("raw_request", connection, inputs)
    finally:
        runtime.close()
    assert type(raised.value) is error_class
    for text in error_texts(raised.value):
        assert leaks(text) == [], text[:2000]


def test_connection_refused_hides_the_key():
    runtime = Runtime(sleep=RecordedSleep())
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": f"http://127.0.0.1:{closed_port()}"}
    try:
        with pytest.raises(errors.ApiConnectionError) as raised:
            runtime.run("raw_request", connection, {"url": f"/v1/models/{API_KEY}", "query_params": {"k": API_KEY}})
    finally:
        runtime.close()
    for text in error_texts(raised.value):
        assert leaks(text) == []


@pytest.mark.parametrize("connection_change, inputs", [
    ({"api_key": API_KEY + "\n"}, {}),            # the commonest copy-paste slip: a trailing line break
    ({"api_key": " " + API_KEY}, {}),
    ({"api_key": API_KEY + " extra words"}, {}),
    ({"api_key": API_KEY * 20}, {}),              # too long
    ({"api_key": [API_KEY]}, {}),                 # wrong type
    ({}, {"model": API_KEY + "/"}),               # the key pasted into another field
    ({}, {"model": API_KEY + "\n"}),
    ({}, {"messages": [{"role": API_KEY, "content": "hi"}]}),
], ids=["key-newline", "key-leading-space", "key-with-words", "key-too-long", "key-not-a-string",
        "key-in-model", "key-newline-in-model", "key-as-role"])
def test_refusals_never_echo_the_key(connection_change, inputs, emulator, azure_connection, quick_runtime):
    connection = {**azure_connection, **connection_change}
    with pytest.raises(errors.InputValidationError) as raised:
        quick_runtime.run("create_chat_completion", connection, inputs)
    for text in error_texts(raised.value):
        assert leaks(text) == [] and API_KEY[:20] not in text, text
    assert raised.value.errors and emulator.request_count == 0


# --- the CLI: stderr for every kind of failure ------------------------------------------------------------


CLI_CASES = [
    # (name, fault for requests whose path holds "cli-<name>", action, inputs, connection change, exit code)
    ("invalid-input", None, "create_chat_completion", {"model": API_KEY + "!"}, {}, 2),
    ("invalid-key", None, "create_chat_completion", {}, {"api_key": API_KEY + " \n"}, 2),
    ("bad-request", Fault.bad_request(f"nope {API_KEY}"), "create_chat_completion", {}, {}, 1),
    ("unauthorized", Fault.status(401, message=f"Incorrect API key provided: {API_KEY}"), "create_chat_completion",
     {}, {}, 1),
    ("forbidden", Fault.status(403), "create_image", {}, {}, 1),
    ("not-found", Fault.not_found(), "summarize_text", {}, {}, 1),
    ("rate-limit", Fault.rate_limit(retry_after_ms=1), "create_chat_completion", {}, {}, 1),
    ("quota", Fault.insufficient_quota(), "create_chat_completion", {}, {}, 1),
    ("content-filter", Fault.content_filter_prompt(), "create_chat_completion", {}, {}, 1),
    ("server-error", Fault.status(500, headers={"x-should-retry": "false"}), "create_chat_completion", {}, {}, 1),
    ("malformed", Fault.malformed(), "create_chat_completion", {}, {}, 1),
    ("redirect", Fault.redirect(f"http://127.0.0.2:9/?key={API_KEY}"), "create_chat_completion", {}, {}, 1),
    ("dropped", Fault.drop(), "raw_request", {"query_params": {"api-key": API_KEY}}, {}, 1),
    ("timeout", Fault.slow(3), "raw_request", {"query_params": {"api-key": API_KEY}, "timeout": 200}, {}, 1),
    ("multiple-items-fail", Fault.status(401, message=f"bad {API_KEY}"), "create_multiple_chat_completions",
     {"prompts": ["a", "b"]}, {}, 1),
    ("debug-request", None, "raw_request", {"query_params": {"api-key": API_KEY}, "debug_request": True,
                                            "headers": {"X-Echo": API_KEY}}, {}, 0),
]


def run_cli(case: Tuple[Any, ...], emulator: Emulator) -> Tuple[str, subprocess.CompletedProcess]:
    name, _, action, inputs, connection_change, _ = case
    # The dated API, so the case's marker (the deployment) is in the path the fault matches.
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": emulator.url,
                  "api_version": "2024-10-21", **connection_change}
    marker = f"cli-{name}"
    if action == "raw_request":
        inputs = {"url": f"/deployments/{marker}/chat/completions", "method": "POST",
                  "data": {"messages": [{"role": "user", "content": "hi"}]}, **inputs}
    elif "model" not in inputs:
        inputs = {**inputs, "model": marker}
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AZURE_OPENAI", "OPENAI_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "azure_openai_connector.cli", "-v", "run", action,
         "--connection", json.dumps(connection), "--inputs", json.dumps(inputs)],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, cwd=Path(__file__).resolve().parent.parent)
    return name, completed


def test_cli_output_holds_no_key_for_any_failure(emulator):
    for name, fault, *_ in CLI_CASES:
        if fault is not None:
            emulator.script(fault, times=None, match=f"/cli-{name}/")
    # One process per case, run side by side: each is mostly interpreter start-up.
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = dict(pool.map(lambda case: run_cli(case, emulator), CLI_CASES))
    for name, _, _, _, _, exit_code in CLI_CASES:
        completed = outcomes[name]
        assert completed.returncode == exit_code, (name, completed.stderr[-2000:])
        assert leaks(completed.stderr) == [] and leaks(completed.stdout) == [], name
        if name == "multiple-items-fail":  # every prompt failed: the result on stdout, a summary on stderr
            assert json.loads(completed.stdout)["totals"]["failed"] == 2
        elif exit_code:
            error = json.loads(completed.stderr[completed.stderr.index('{\n  "error"'):])["error"]
            assert error["type"] and error["message"], name
        assert "DEBUG" in completed.stderr or name.startswith("invalid"), name


# --- no request to any other host ---------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(action, status, emulator, connection, quick_runtime, other_host):
    emulator.script(Fault.redirect(f"http://{other_host.address}/steal", status=status), times=None)
    inputs = inputs_for(action, connection)
    if action == "create_multiple_chat_completions":
        result = quick_runtime.run(action, connection, inputs)
        assert {item["error"]["type"] for item in result["results"]} == {"redirect_not_followed"}
    else:
        with pytest.raises(errors.RedirectNotFollowedError) as raised:
            quick_runtime.run(action, connection, inputs)
        assert raised.value.status == status and raised.value.attempts == 1
    assert other_host.seen == []
    assert emulator.request_count == (2 if action == "create_multiple_chat_completions" else 1)


ESCAPING_PATHS = [
    "//{other}/steal", "///{other}/steal", "/\\{other}/steal", "/\\\\{other}/steal", "/@{other}/steal",
    "/v1/models@{other}", "/%2F%2F{other}/steal", "/%252F%252F{other}/steal", "/%5C%5C{other}/steal",
    "/..", "/../{other}", "/v1/../../steal", "/v1/%2e%2e/%2e%2e/steal", "/v1/%252e%252e/steal",
    "/v1/..;/steal", "/v1/models#@{other}", "/v1/ models", "/v1/models\r\nHost: {other}",
    "/v1/\uff0e\uff0e/steal", "/v1/models\x00", "/%", "/%zz",
]


@pytest.mark.parametrize("template", ESCAPING_PATHS)
def test_raw_paths_cannot_leave_the_host(template, emulator, connection, quick_runtime, other_host):
    path = template.format(other=other_host.address)
    with pytest.raises(errors.InputValidationError) as raised:
        quick_runtime.run("raw_request", connection, {"url": path})
    assert [problem["path"] for problem in raised.value.errors] == ["url"] * len(raised.value.errors)
    assert emulator.request_count == 0 and other_host.seen == []


@pytest.mark.parametrize("inputs", [
    {"url": "http://{other}/steal"},
    {"url": "/v1/models", "headers": {"Host": "{other}"}},
    {"url": "/v1/models", "headers": {"api-key": "another"}},
    {"url": "/v1/models", "headers": {"Authorization": "Bearer another"}},
], ids=["absolute-url", "host-header", "api-key-header", "authorization-header"])
def test_raw_requests_cannot_redirect_or_replace_credentials(inputs, emulator, connection, quick_runtime,
                                                             other_host):
    inputs = json.loads(json.dumps(inputs).replace("{other}", other_host.address))
    with pytest.raises(errors.InputValidationError):
        quick_runtime.run("raw_request", connection, inputs)
    assert emulator.request_count == 0 and other_host.seen == []


@pytest.mark.parametrize("endpoint", [
    "http://example.com", "http://example.com:443", "HTTP://example.com/v1", "http://10.0.0.1",
    "http://192.168.1.10:8080", "http://127.0.0.1.nip.io", "http://localhost.example.com", "http://0x7f000001",
    "http://127.1", "https://user:{key}@example.com", "https://example.com/?key={key}",
    "https://example.com/#frag", "ftp://127.0.0.1", "https://", "http://[::1", "https://example.com:99999",
], ids=lambda endpoint: endpoint.replace("{key}", "KEY"))
@pytest.mark.parametrize("is_openai", [False, True], ids=["azure", "openai"])
def test_endpoints_must_be_https_unless_loopback(endpoint, is_openai, quick_runtime, other_host):
    connection = {"api_key": API_KEY, "organization": "contoso", "is_openai_key": is_openai,
                  "endpoint": endpoint.replace("{key}", API_KEY)}
    with pytest.raises(errors.InputValidationError) as raised:
        quick_runtime.run("create_chat_completion", connection, {})
    assert [problem["path"] for problem in raised.value.errors] == ["connection/endpoint"]
    for text in error_texts(raised.value):
        assert leaks(text) == []


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1234/v1",
                                      "http://[::1]:8080", "HTTP://LOCALHOST", "https://example.com",
                                      "https://my-resource.cognitiveservices.azure.com/openai"])
def test_loopback_http_and_any_https_endpoint_are_accepted(endpoint, quick_runtime):
    connection = quick_runtime.connection({"api_key": API_KEY, "endpoint": endpoint})
    assert connection.base_url.lower().startswith(("https://", "http://127.", "http://localhost", "http://[::1]"))


def test_the_key_reaches_only_the_configured_host_and_only_in_its_header(emulator, connection, quick_runtime,
                                                                          other_host):
    for action in ACTIONS:
        quick_runtime.run(action, connection, inputs_for(action, connection))
    header = "authorization" if connection.get("is_openai_key") else "api-key"
    for request in emulator.requests:
        assert [name.lower() for name, value in request.headers.items() if API_KEY in value] == [header]
        assert API_KEY not in request.path and API_KEY not in json.dumps(request.query)
        assert API_KEY.encode() not in request.body
    assert other_host.seen == []
