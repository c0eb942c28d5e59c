"""The playground server over real HTTP on 127.0.0.1: token, Host and Origin checks, the API,
steps run as a host runs them, API keys never sent back, logged or written anywhere."""

from __future__ import annotations

import base64
import http.client
import json
import time
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

import pytest

from azure_openai_connector import cli
from azure_openai_connector.emulator.batches import EXAMPLE_BATCH_ID
from azure_openai_connector.forms import action_form
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.playground import Playground, PlaygroundApp
from azure_openai_connector.playground.app import PlaygroundError
from support import API_KEY

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = list(load_manifest().raw["actions"])
PAGE_KEY = "sk-page-key-3b9d0c7e5a1f4e2d8c6b"


@pytest.fixture
def playground() -> Iterator[Playground]:
    """A playground with no credentials in its environment: it runs its own emulator."""
    with Playground(environ={}) as pg:
        yield pg


@pytest.fixture
def env_playground(emulator) -> Iterator[Playground]:
    """A playground whose environment holds Azure credentials (for the test emulator)."""
    with Playground(environ={"AZURE_OPENAI_API_KEY": API_KEY, "AZURE_OPENAI_ENDPOINT": emulator.url}) as pg:
        yield pg


def call(pg: Playground, method: str, path: str, *, body: Any = None, raw: Optional[bytes] = None,
         token: Optional[str] = "header", host: Optional[str] = None,
         headers: Optional[Mapping[str, str]] = None) -> Tuple[int, http.client.HTTPMessage, bytes]:
    """One request; `token` is "header" (the right one), None, or a literal token to send."""
    sent = {"Host": host or f"127.0.0.1:{pg.port}"}
    if token == "header":
        sent["X-Playground-Token"] = pg.token
    elif token is not None:
        sent["X-Playground-Token"] = token
    if body is not None:
        raw = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", pg.port, timeout=60)
    try:
        connection.request(method, path, body=raw, headers=sent)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def run_step(pg: Playground, action: str, connection: Optional[Dict[str, Any]] = None,
             inputs: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    status, _, body = call(pg, "POST", "/api/run", body={"action": action, "connection": connection or {},
                                                         "inputs": inputs or {}})
    assert status == 200, body
    return json.loads(body)


# --- the token ----------------------------------------------------------------------------------


def test_the_token_is_random_long_and_printed_in_the_page_url(playground):
    with Playground(environ={}) as other:
        assert other.token != playground.token
    assert len(playground.token) >= 43  # secrets.token_urlsafe(32)
    assert playground.page_url == f"http://127.0.0.1:{playground.port}/?token={playground.token}"


@pytest.mark.parametrize("method,path", [("GET", "/api/connector"), ("POST", "/api/run"),
                                         ("POST", "/api/options")])
@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_api_calls_without_the_right_token_are_refused(playground, method, path, token):
    status, headers, body = call(playground, method, path, token=token,
                                 body={"action": "create_chat_completion"} if method == "POST" else None)
    assert status == 403
    assert json.loads(body)["error"]["type"] == "forbidden"
    assert playground.emulator.request_count == 0


def test_the_page_needs_the_token_once_then_a_strict_http_only_cookie(playground):
    status, _, body = call(playground, "GET", "/", token=None)
    assert status == 403 and b"Token required" in body
    assert call(playground, "GET", "/?token=wrong", token=None)[0] == 403

    status, headers, _ = call(playground, "GET", f"/?token={playground.token}", token=None)
    assert status == 303
    assert headers["Location"] == "/"  # the token leaves the address bar
    cookie = headers["Set-Cookie"]
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    assert name_value == f"aoc_playground_{playground.port}={playground.token}"
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attributes)

    with_cookie = {"Cookie": name_value}
    status, headers, page = call(playground, "GET", "/", token=None, headers=with_cookie)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="/static/forms.bundle.js"' in page and b"<script>" not in page  # no inline scripts
    assert call(playground, "GET", "/api/connector", token=None, headers=with_cookie)[0] == 200
    assert call(playground, "GET", "/api/connector", token=None,
                headers={"Cookie": f"aoc_playground_{playground.port}=nope"})[0] == 403


# --- Host, Origin, Sec-Fetch-Site ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/playground.js", "/api/connector"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "127.0.0.1",
                                  "localhost.evil.example:{port}", "[::1]:{port}"])
def test_requests_for_another_host_are_refused(playground, path, host):
    status, _, body = call(playground, "GET", path, host=host.format(port=playground.port))
    assert status == 403, body


def test_localhost_is_accepted_as_host(playground):
    status, _, _ = call(playground, "GET", "/api/connector", host=f"localhost:{playground.port}")
    assert status == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1",
                                    "https://127.0.0.1:{port}", "http://localhost:{port}"])
def test_requests_from_another_origin_are_refused(playground, origin):
    """Even with the token: another page in the browser must not drive the playground."""
    status, _, _ = call(playground, "POST", "/api/run", body={"action": "create_chat_completion"},
                        headers={"Origin": origin.format(port=playground.port)})
    assert status == 403
    status, _, _ = call(playground, "OPTIONS", "/api/run",
                        headers={"Origin": origin.format(port=playground.port),
                                 "Access-Control-Request-Method": "POST"})
    assert status == 403
    assert playground.emulator.request_count == 0


def test_the_pages_own_origin_is_accepted(playground):
    status, _, body = call(playground, "POST", "/api/run", body={"action": "create_chat_completion"},
                           headers={"Origin": f"http://127.0.0.1:{playground.port}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and json.loads(body)["ok"] is True


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_cross_site_fetches_are_refused(playground, site):
    status, _, _ = call(playground, "GET", "/api/connector", headers={"Sec-Fetch-Site": site})
    assert status == 403


def test_runs_take_json_only(playground):
    """A form post from another page cannot be made into a step."""
    status, _, _ = call(playground, "POST", "/api/run", raw=b"action=create_chat_completion",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, _, _ = call(playground, "POST", "/api/run", raw=b'{"action": "create_chat_completion"}',
                        headers={"Content-Type": "text/plain"})
    assert status == 415
    assert playground.emulator.request_count == 0


# --- headers, routes, limits ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/playground.js", "/api/connector", "/nowhere"])
def test_security_headers_on_every_answer(playground, path):
    status, headers, _ = call(playground, "GET", path,
                              headers={"Cookie": f"aoc_playground_{playground.port}={playground.token}"})
    assert status in (200, 404)
    csp = headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"].split() == ["'self'", "'unsafe-eval'"]  # ajv compiles schemas
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    if path.startswith("/api/"):
        assert headers["Cache-Control"] == "no-store"


def test_static_files_and_routes(playground):
    status, headers, bundle = call(playground, "GET", "/static/forms.bundle.js", token=None)
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    static = ROOT / "azure_openai_connector" / "playground" / "static"
    assert bundle == (static / "forms.bundle.js").read_bytes()
    for name in ("playground.js", "playground.css", "THIRD_PARTY_LICENSES.txt"):
        assert call(playground, "GET", f"/static/{name}", token=None)[0] == 200
    for name in ("index.html", "../server.py", "%2e%2e/server.py", "nothing.js"):
        assert call(playground, "GET", f"/static/{name}")[0] == 404
    assert call(playground, "GET", "/favicon.ico", token=None)[1]["Content-Type"] == "image/svg+xml"
    assert call(playground, "GET", "/api/run")[0] == 405
    assert call(playground, "DELETE", "/api/connector")[0] == 405
    assert call(playground, "GET", "/etc/passwd")[0] == 404


def test_bad_run_requests(playground):
    assert call(playground, "POST", "/api/run", raw=b"{not json", headers={"Content-Type": "application/json"})[0] == 400
    for body in ([], {"action": 3}, {"action": "create_image", "inputs": []},
                 {"action": "create_image", "connection": "key"}):
        status, _, answer = call(playground, "POST", "/api/run", body=body)
        assert status == 400 and json.loads(answer)["error"]["type"] == "invalid_request", body
    status, _, _ = call(playground, "POST", "/api/run", raw=b"",
                        headers={"Content-Type": "application/json", "Content-Length": str(10 ** 9)})
    assert status == 413


def test_it_listens_on_loopback_only(playground):
    assert playground._server.server_address[0] == "127.0.0.1"  # noqa: SLF001


# --- the API ---------------------------------------------------------------------------------------


def test_connector_document(playground):
    status, headers, body = call(playground, "GET", "/api/connector")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    manifest = load_manifest().raw
    connector = doc["connector"]
    assert connector["label"] == manifest["connector"]["label"]
    assert connector["description"] == manifest["connector"]["description"]
    assert connector["icon"].startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(connector["icon"].split(",", 1)[1]).startswith(b"<svg")
    assert [a["key"] for a in doc["actions"]] == ACTIONS
    for action in doc["actions"]:
        assert action["form"] == action_form(manifest, action["key"])
        assert action["label"] == manifest["actions"][action["key"]]["label"]
    form = doc["connection"]["form"]
    assert "api_key" not in form["schema"].get("required", [])  # the server can supply it
    assert form["uiSchema"]["api_key"]["ui:widget"] == "password"
    assert doc["server_connection"]["source"] == "emulator"


def test_connector_document_names_the_environment_service(env_playground):
    doc = json.loads(call(env_playground, "GET", "/api/connector")[2])
    assert doc["server_connection"]["source"] == "environment"
    assert doc["server_connection"]["service"] == "azure"
    assert env_playground.emulator is None  # no emulator of its own
    assert API_KEY not in json.dumps(doc)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("openai", [False, True])
def test_every_action_runs_with_its_defaults_on_the_emulator(playground, action, openai):
    # An action on an existing batch gets the emulator's example batch: no default can name one.
    inputs = {"batch_id": EXAMPLE_BATCH_ID} if "batch_id" in load_manifest().action(action).inputs.fields else {}
    answer = run_step(playground, action, {"is_openai_key": openai} if openai else {}, inputs)
    assert answer["ok"] is True, answer
    assert answer["ran_on"] == {"source": "emulator", "service": "openai" if openai else "azure"}
    assert isinstance(answer["duration_ms"], (int, float))
    assert playground.emulator.request_count >= 1
    if action == "create_chat_completion":
        assert answer["result"]["content"] == "Emulated reply to: Where was it played?"


def test_the_page_logic_runs_steps_without_http(emulator):
    app = PlaygroundApp(env_connection=None, emulator_url=emulator.url, emulator_key=API_KEY)
    answer = app.run({"action": "create_chat_completion",
                      "inputs": {"messages": [{"role": "user", "content": "Hi?"}]}})
    assert answer["ok"] is True and answer["result"]["content"] == "Emulated reply to: Hi?"
    assert answer["ran_on"] == {"source": "emulator", "service": "azure"}
    assert emulator.requests[0].headers.get("api-key") == API_KEY
    with pytest.raises(PlaygroundError) as refused:
        app.run(["not", "an", "object"])
    assert (refused.value.status, refused.value.kind) == (400, "invalid_request")


def test_the_duration_is_the_steps_own_in_milliseconds():
    step_seconds = 0.05

    def slow_step(action, connection, inputs):
        time.sleep(step_seconds)
        return {"content": "done"}

    app = PlaygroundApp(env_connection=None, emulator_url="http://127.0.0.1:9", emulator_key=API_KEY,
                        runner=slow_step)
    started = time.perf_counter()
    answer = app.run({"action": "create_chat_completion", "inputs": {}})
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert answer["ok"] is True
    assert step_seconds * 1000 <= answer["duration_ms"] <= elapsed_ms + 0.1


def test_a_step_without_a_key_gets_the_emulator_connection_with_the_pages_other_fields():
    seen = []
    key = "playground-key-0123456789"
    app = PlaygroundApp(env_connection=None, emulator_url="http://127.0.0.1:1", emulator_key=key,
                        runner=lambda action, connection, inputs: seen.append((action, connection, inputs)) or {"x": 1})
    answer = app.run({"action": "summarize_text", "connection": {"is_openai_key": True, "organization": "org-1",
                                                                 "endpoint": "https://elsewhere.example"},
                      "inputs": {"text": "hello"}})
    assert seen == [("summarize_text", {"is_openai_key": True, "organization": "org-1", "api_key": key,
                                        "endpoint": "http://127.0.0.1:1/v1"}, {"text": "hello"})]
    assert answer["ok"] is True and answer["result"] == {"x": 1}
    assert answer["ran_on"] == {"source": "emulator", "service": "openai"}


def test_invalid_inputs_come_back_as_typed_errors_with_field_paths(playground):
    answer = run_step(playground, "create_chat_completion", {},
                      {"temperature": 5, "messages": [{"role": "robot", "content": "x"}]})
    assert answer["ok"] is False
    assert answer["error"]["type"] == "invalid_input"
    assert {e["path"] for e in answer["error"]["errors"]} == {"temperature", "messages/0/role"}
    answer = run_step(playground, "create_chat_completion", {"api_key": PAGE_KEY}, {})
    assert [e["path"] for e in answer["error"]["errors"]] == ["connection/organization"]
    answer = run_step(playground, "no_such_action")
    assert answer["error"]["errors"][0]["path"] == "action"
    assert playground.emulator.request_count == 0


def test_api_errors_come_back_typed(playground):
    answer = run_step(playground, "create_chat_completion",
                      {"api_key": PAGE_KEY, "endpoint": playground.emulator.url})
    assert answer["ok"] is False
    assert answer["error"]["type"] == "authentication" and answer["error"]["status"] == 401
    assert answer["ran_on"] == {"source": "page", "service": "azure"}


def test_the_environment_credentials_are_used_when_the_page_gives_no_key(env_playground, emulator):
    answer = run_step(env_playground, "create_chat_completion", {"api_key": "", "is_openai_key": False})
    assert answer["ok"] is True, answer
    assert answer["ran_on"] == {"source": "environment", "service": "azure"}
    assert emulator.requests[-1].headers.get("api-key") == API_KEY


# --- API keys never go back ---------------------------------------------------------------------


def test_a_key_in_the_page_never_comes_back(playground):
    endpoint = playground.emulator.url
    answers = [
        run_step(playground, "create_chat_completion", {"api_key": PAGE_KEY, "endpoint": endpoint}),
        run_step(playground, "create_chat_completion", {"api_key": PAGE_KEY + " x", "endpoint": endpoint}),
        run_step(playground, "create_chat_completion", {"api_key": PAGE_KEY, "endpoint": "ftp://" + PAGE_KEY}),
        run_step(playground, "raw_request", {"api_key": PAGE_KEY, "endpoint": endpoint},
                 {"url": "/v1/models", "headers": {"api-key": PAGE_KEY}}),
    ]
    for answer in answers:
        assert answer["ok"] is False
        assert PAGE_KEY not in json.dumps(answer), answer


def test_keys_are_scrubbed_even_when_the_service_echoes_them(playground, env_playground, emulator):
    # The emulator's reply quotes the last message, which here holds a key.
    answer = run_step(playground, "create_chat_completion", {},
                      {"messages": [{"role": "user", "content": f"my key is {playground._emulator_key}"}]})  # noqa: SLF001
    assert answer["result"]["content"] == "Emulated reply to: my key is ***"
    answer = run_step(env_playground, "create_chat_completion", {},
                      {"messages": [{"role": "user", "content": API_KEY}]})
    assert API_KEY not in json.dumps(answer)


def clean_environment(home: Path) -> Dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AZURE_OPENAI_", "OPENAI_"))}
    env.update(HOME=str(home), TMPDIR=str(home / "tmp"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_CONFIG_HOME=str(home / "config"), PYTHONDONTWRITEBYTECODE="1")
    return env


def first_line(stream, timeout: float) -> str:
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


@pytest.mark.slow
def test_the_command_logs_no_key_and_writes_no_file(tmp_path, emulator):
    home = tmp_path / "home"
    home.mkdir()
    (home / "tmp").mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    env = clean_environment(home)
    env.update(AZURE_OPENAI_API_KEY=API_KEY, AZURE_OPENAI_ENDPOINT=emulator.url)
    # Whatever the package itself leaves on a first start (a cache of the manifest check) is not
    # the playground's doing: start once without it and compare against that.
    subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", "describe", "--json"], cwd=work, env=env,
                   check=True, capture_output=True, timeout=120)
    before = snapshot(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "azure_openai_connector.cli", "-v", "playground", "--port", "0"],
                               cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = first_line(process.stdout, timeout=60).strip()
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        base, token = url.split("/?token=")
        port = int(base.rsplit(":", 1)[1])
        pg = type("Remote", (), {"port": port, "token": token})()
        answers = [run_step(pg, "create_chat_completion"),
                   run_step(pg, "raw_request", {"api_key": PAGE_KEY, "endpoint": emulator.url}, {"debug_request": True}),
                   run_step(pg, "create_chat_completion", {"api_key": PAGE_KEY, "endpoint": emulator.url})]
        assert answers[0]["ok"] is True and answers[0]["ran_on"]["source"] == "environment"
        assert answers[2]["error"]["type"] == "authentication"
        assert call(pg, "GET", f"/?token={token}", token=None)[0] == 303
        assert emulator.requests[0].headers.get("api-key") == API_KEY
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "playground stopped" in err
    for secret in (API_KEY, PAGE_KEY):
        assert secret not in out and secret not in err
    after = snapshot(tmp_path)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))
    for content in after.values():
        assert API_KEY.encode() not in content and PAGE_KEY.encode() not in content


def snapshot(root: Path) -> Dict[str, bytes]:
    return {str(path): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_the_command_is_listed(capsys):
    with pytest.raises(SystemExit):
        cli.main(["playground", "--help"])
    out = capsys.readouterr().out
    assert "--port" in out and "127.0.0.1" in out


# --- live options (x-options) -------------------------------------------------------------------


def ask_options(pg: Playground, body: Any, **kwargs: Any) -> Tuple[int, Dict[str, Any]]:
    status, _, answer = call(pg, "POST", "/api/options", body=body, **kwargs)
    return status, json.loads(answer)


def test_the_connector_document_lists_each_actions_option_inputs(playground):
    _, _, body = call(playground, "GET", "/api/connector")
    listed = {action["key"]: action["option_inputs"] for action in json.loads(body)["actions"]}
    manifest = load_manifest().raw["actions"]
    for key, spec in manifest.items():
        assert listed[key] == [name for name, field in spec["inputs"]["properties"].items()
                               if field.get("x-options")], key
    assert listed["create_chat_completion"] == ["model"]


def test_model_options_come_from_the_emulators_models_list_with_lifecycles(playground):
    status, answer = ask_options(playground, {"action": "create_chat_completion", "input": "model",
                                              "connection": {}})
    assert status == 200 and answer["ok"], answer
    assert answer["ran_on"] == {"source": "emulator", "service": "azure"}
    by_value = {option["value"]: option for option in answer["options"]}
    assert {"gpt-5.1", "gpt-5-mini"} <= set(by_value)
    statuses = {option["lifecycle"]["status"] for option in answer["options"]}
    assert {"available", "deprecated", "retired"} <= statuses
    retired = next(option for option in answer["options"] if option["lifecycle"]["status"] == "retired")
    assert "retired" in retired["label"]


def test_options_are_refused_without_the_token_or_from_another_origin(playground):
    body = {"action": "create_chat_completion", "input": "model"}
    assert ask_options(playground, body, token=None)[0] == 403
    status, answer = ask_options(playground, body, headers={"Origin": "http://evil.example"})
    assert status == 403 and answer["error"]["type"] == "forbidden"
    status, _, _ = call(playground, "GET", "/api/options")
    assert status == 405
    assert playground.emulator.request_count == 0


def test_bad_options_requests(playground):
    for body, status in [([], 400), ({"input": "model"}, 400), ({"action": "create_chat_completion"}, 400),
                         ({"action": "create_chat_completion", "input": "model", "connection": []}, 400),
                         ({"action": "create_chat_completion", "input": "model", "refresh": "yes"}, 400)]:
        got, answer = ask_options(playground, body)
        assert got == status and answer["error"]["type"] == "invalid_request", (body, answer)
    got, answer = ask_options(playground, {"action": "create_chat_completion", "input": "nope"})
    assert got == 200 and not answer["ok"] and answer["error"]["type"] == "invalid_input"
    got, answer = ask_options(playground, {"action": "get_batch_status", "input": "batch_id"})
    assert got == 200 and answer == {"ok": True, "options": [], "ran_on": answer["ran_on"]}


def test_options_on_the_environment_connection_never_return_its_key(env_playground):
    status, answer = ask_options(env_playground, {"action": "create_image", "input": "model"})
    assert status == 200 and answer["ok"], answer
    assert answer["ran_on"]["source"] == "environment"
    assert "gpt-image-2" in {option["value"] for option in answer["options"]}
    assert API_KEY not in json.dumps(answer)


def test_the_page_logic_answers_options_without_http(emulator):
    app = PlaygroundApp(env_connection=None)
    with pytest.raises(PlaygroundError) as refused:
        app.options({"action": "create_chat_completion", "input": "model"})
    assert refused.value.status == 409 and refused.value.kind == "no_connection"
    with pytest.raises(PlaygroundError):
        app.options("not an object")
    answer = app.options({"action": "create_chat_completion", "input": "model",
                          "connection": {"endpoint": emulator.url, "api_key": API_KEY}})
    assert answer["ok"] and answer["ran_on"] == {"source": "page", "service": "azure"}
    assert "gpt-5.1" in {option["value"] for option in answer["options"]}
    assert API_KEY not in json.dumps(answer)
