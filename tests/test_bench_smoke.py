"""The benchmark entry point runs end to end (tiny sizes, no timing assertions), and the behaviour
its performance fixes could have cost still holds: a changed or broken manifest is still checked
fully, the HTTP layer's own request preparation sends what `Session.request` would, and proxy
settings from the environment still apply."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from azure_openai_connector import errors
from azure_openai_connector.connection import connection_from_values
from azure_openai_connector.http import HttpClient
from azure_openai_connector.errors import ManifestError
from azure_openai_connector.manifest import load_validated
from azure_openai_connector.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
HAVE_OPENAI = importlib.util.find_spec("openai") is not None

SDK_PER_CALL = ["ours / openai SDK (wall)", "ours / openai SDK (client CPU)", "openai SDK / bare Session (wall)"]
PER_CALL = ["ours / tuned Session (wall)", "ours / bare Session (wall)", "urllib3 / tuned Session (wall)",
            "http.client / tuned Session (wall)", "ours / tuned Session (client CPU)",
            "ours / bare Session (client CPU)"]
QUOTA = ["ours / quota ideal", "ours: 429s per prompt", "aimd / quota ideal", "aimd: 429s per prompt"] + (
    ["sdk / quota ideal", "sdk: 429s per prompt"] if HAVE_OPENAI else [])
EXPECTED_RATIOS = {
    "cold": ["fresh worker / floor (median of each round's ratio)", "fresh worker / floor (ratio of the medians)",
             "default cache / floor (median of each round's ratio)",
             "source checkout / floor (median of each round's ratio)"] + (
        ["fresh worker / import openai (median of each round's ratio)",
         "fresh worker / import openai (ratio of the medians)"] if HAVE_OPENAI else []),
    "per_call": PER_CALL + (SDK_PER_CALL if HAVE_OPENAI else []),
    "per_call_emulator": PER_CALL + (SDK_PER_CALL if HAVE_OPENAI else []),
    "validation": ["ours (µs, absolute)", "ours / jsonschema"],
    "fanout_16": ["ours / ideal"] + (["openai SDK / ideal"] if HAVE_OPENAI else []),
    "fanout_50": ["ours / ideal"] + (["openai SDK / ideal"] if HAVE_OPENAI else []),
    "scale": ["ours / bare pool", "ours peak RSS growth (MB, absolute)", "bare pool / ideal"],
    "summarize": ["ours / ideal"],
    "quota_tpm": QUOTA,
    "quota_rpm": QUOTA,
}


def test_the_benchmark_entry_point_produces_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert list(report["benchmarks"]) == list(EXPECTED_RATIOS)
    for key, ratio_names in EXPECTED_RATIOS.items():
        bench = report["benchmarks"][key]
        assert sorted(ratio["name"] for ratio in bench["ratios"]) == sorted(ratio_names), key
        assert all(isinstance(ratio["value"], float) and math.isfinite(ratio["value"]) for ratio in bench["ratios"])
        assert bench["measurements"] and all(m["samples"] for m in bench["measurements"]), key
        # The printed table has the same rows.
        assert all(f"| {bench['title']} | {ratio} |" in done.stdout for ratio in ratio_names), key
    subjects = [m["subject"] for m in report["benchmarks"]["scale"]["measurements"]]
    assert "ours: peak RSS growth per kept prompt" in subjects
    for key in ("quota_tpm", "quota_rpm"):
        quota_rows = {m["subject"]: m["samples"] for m in report["benchmarks"][key]["measurements"]}
        # Ours lost no prompt (the SDK may: its retries give up), and every subject's 429s were counted.
        assert quota_rows["run_action, the shared quota pacer: prompts failed"] == [0]
        assert sum(subject.endswith("requests answered 429") for subject in quota_rows) == len(QUOTA) // 2


def test_the_parts_benchmark_measures_every_part_of_this_tree() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.parts"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    parts = json.loads(done.stdout)
    assert parts.pop("package") == str(ROOT)
    assert len(parts) == 7 and all(isinstance(value, float) and value > 0 for value in parts.values()), parts


# --- the manifest: checked once per content, never skipped for a changed one ---------------------


def _packaged(name: str) -> str:
    return (resources.files("azure_openai_connector") / "data" / name).read_text(encoding="utf-8")


def test_a_validated_manifest_leaves_a_marker_and_a_broken_one_still_fails(tmp_path: Path) -> None:
    text, meta = _packaged("connector.yaml"), _packaged("manifest.schema.json")
    load_validated(text, meta, source="connector.yaml", cache_dir=tmp_path)
    markers = list(tmp_path.glob("manifest-*.validated"))
    assert len(markers) == 1
    load_validated(text, meta, source="connector.yaml", cache_dir=tmp_path)  # the marker path

    broken = text.replace("maximum: 64\n          default: 8", "maximum: 64\n          default: 65", 1)
    assert broken != text
    with pytest.raises(ManifestError, match=r"max_concurrency\.default: 65 is greater than the maximum of 64"):
        load_validated(broken, meta, source="connector.yaml", cache_dir=tmp_path)
    assert list(tmp_path.glob("manifest-*.validated")) == markers


def test_an_unwritable_cache_only_means_checking_every_time(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    manifest = load_validated(_packaged("connector.yaml"), _packaged("manifest.schema.json"),
                              source="connector.yaml", cache_dir=blocker / "cache")
    assert "create_chat_completion" in manifest.actions


def _imports_jsonschema_on_load(cache_dir: str, home: str) -> bool:
    code = ("import sys\nfrom azure_openai_connector.manifest import load_manifest\n"
            "load_manifest()\nprint('jsonschema' in sys.modules)")
    env = dict(os.environ, AZURE_OPENAI_CONNECTOR_CACHE_DIR=cache_dir, HOME=home)
    env.pop("XDG_CACHE_HOME", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60, check=True)
    return done.stdout.strip() == "True"


def test_a_fresh_worker_skips_jsonschema_for_the_proven_packaged_manifest(tmp_path: Path) -> None:
    read_only_home = tmp_path / "home"
    read_only_home.mkdir()
    read_only_home.chmod(0o555)
    try:
        assert _imports_jsonschema_on_load("", str(read_only_home)) is False    # no cache at all
        assert _imports_jsonschema_on_load(str(tmp_path / "cache"), str(read_only_home)) is False
    finally:
        read_only_home.chmod(0o755)
    assert not (tmp_path / "cache").exists()  # nothing to remember: the package carries the proof


# --- the HTTP layer's lean request preparation ------------------------------------------------------


class _Capture(BaseAdapter):
    """Records what would be sent, answers 200 without a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.sent.append((request, kwargs))
        response = requests.Response()
        response.status_code, response._content, response.request, response.url = 200, b"{}", request, request.url
        return response

    def close(self) -> None:
        pass


@pytest.mark.parametrize("data", [b'{"messages":[]}', "plain text", {"form": "field"}, None])
def test_the_lean_path_prepares_what_session_request_would(data: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # so the session has proxies to pass on
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = HttpClient(connection_from_values({"api_key": "lean-path-key", "organization": "contoso",
                                                "api_version": "2024-10-21"}))
    client.session.cookies.set("affinity", "node-7", domain="contoso.openai.azure.com", path="/")
    capture = _Capture()
    client.session.mount("https://", capture)
    url = client.connection.raw_url("/deployments/gpt-4o-mini/chat/completions", {"q": "a b/ü"})
    headers = {"Content-Type": "application/json", "api-key": "lean-path-key", "X-Dropped": None}

    client._send("POST", url, data=data, files=None, params=None, headers=headers, timeout=(5.0, 600.0))
    client.session.request("POST", url, data=data, headers=headers, timeout=(5.0, 600.0), allow_redirects=False)

    (lean, lean_options), (standard, standard_options) = capture.sent
    assert lean.url == standard.url and "q=a+b%2F%C3%BC" in lean.url
    assert (lean.method, list(lean.headers.items()), lean.body, lean.hooks) == (
        standard.method, list(standard.headers.items()), standard.body, standard.hooks)
    assert lean.headers["Cookie"] == "affinity=node-7"
    assert lean_options == standard_options and lean_options["proxies"]


def _pool_of(client: HttpClient, url: str) -> object:
    prepared = requests.Request("GET", url).prepare()
    return client.session.get_adapter(url).get_connection_with_tls_context(prepared, client.session.verify, {}, None)


def test_the_adapter_remembers_the_pool_of_an_origin_until_the_pool_is_replaced(emulator, azure_connection) -> None:
    runtime = Runtime()
    try:
        runtime.run("create_chat_completion", azure_connection, {"messages": [{"role": "user", "content": "one"}]})
        client = runtime.client(runtime.connection(azure_connection))
        url = emulator.url + "/openai/v1/chat/completions"
        remembered = _pool_of(client, url)
        assert _pool_of(client, url) is remembered  # the same origin and TLS settings: the same pool
        assert _pool_of(client, emulator.url + "/openai/v1/models?x=1") is remembered

        adapter = client.session.get_adapter(url)  # the very pool requests' own lookup finds
        assert remembered is HTTPAdapter.get_connection_with_tls_context(
            adapter, requests.Request("GET", url).prepare(), client.session.verify, {}, None)

        from azure_openai_connector.actions.pool_sizing import grow_pool

        before = _pool_of(client, url)
        grow_pool(client, client.pool_size + 8)  # a new pool manager, sized for more concurrency
        assert _pool_of(client, url) is not before
        assert _pool_of(client, url).pool.maxsize == client.pool_size
        answer = runtime.run("create_chat_completion", azure_connection,
                             {"messages": [{"role": "user", "content": "three"}]})
        assert answer["content"] == "Emulated reply to: three"
    finally:
        runtime.close()


# --- proxies from the environment: read once per session, never dropped ---------------------------


class _Proxy(BaseHTTPRequestHandler):
    seen: List[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.seen.append(self.requestline)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "via the proxy"}}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:  # noqa: N802
        self.seen.append(self.requestline)
        self.send_error(502)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A forward proxy on loopback (its URL); `_Proxy.seen` holds the request lines it received."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    _Proxy.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _runtime() -> Runtime:
    return Runtime(sleep=lambda seconds: None)


def test_http_proxy_and_no_proxy_from_the_environment_apply(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    connection = {"api_key": "proxy-test-key", "organization": "contoso", "endpoint": "http://localhost:9"}
    result = _runtime().run("create_chat_completion", connection, {})
    assert result["content"] == "via the proxy"
    assert _Proxy.seen == ["POST http://localhost:9/openai/v1/chat/completions HTTP/1.1"]

    monkeypatch.setenv("NO_PROXY", "localhost")
    with pytest.raises(errors.ApiConnectionError):  # straight to localhost:9, where nothing listens
        _runtime().run("create_chat_completion", connection, {})
    assert len(_Proxy.seen) == 1


def test_https_proxy_from_the_environment_applies(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    with pytest.raises(errors.ApiConnectionError):  # the test proxy refuses to tunnel
        _runtime().run("create_chat_completion", {"api_key": "proxy-test-key", "organization": "contoso"}, {})
    assert _Proxy.seen and all(line.startswith("CONNECT contoso.openai.azure.com:443 HTTP/") for line in _Proxy.seen)
