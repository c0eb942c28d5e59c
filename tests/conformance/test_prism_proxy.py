"""`prism proxy --errors` as a response validator: a tiny local upstream, good and bad answers.

This is the pattern for checking an emulator's (or recorded) responses against the Azure spec.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from prism_support import LOOPBACK, PrismServer, violations

pytestmark = pytest.mark.prism

HTTP_TIMEOUT_S = 15
CHAT_PATH = "/openai/deployments/dep/chat/completions?api-version=2024-10-21"
CHAT_BODY = {"messages": [{"role": "user", "content": "hi"}]}


class ScriptedUpstream:
    """Loopback HTTP server that answers every POST with `self.reply` and records the paths."""

    def __init__(self) -> None:
        self.reply: Dict[str, Any] = {}
        self.seen_paths: List[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.seen_paths.append(self.path)
                payload = json.dumps(upstream.reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass  # keep pytest output clean

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "ScriptedUpstream":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def conforming_chat_reply(prism_azure: PrismServer) -> Dict[str, Any]:
    # The mock's own example is by construction a schema-valid chat completion.
    response = requests.post(
        prism_azure.url + CHAT_PATH, json=CHAT_BODY, headers={"api-key": "x"}, timeout=HTTP_TIMEOUT_S
    )
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def azure_proxy(
    prism_executable: Path, azure_prism_spec: Path
) -> Iterator[tuple]:
    with ScriptedUpstream() as upstream:
        with PrismServer.proxy(azure_prism_spec, upstream.url, binary=prism_executable) as proxy:
            yield proxy, upstream


def test_proxy_passes_a_conforming_upstream_response(
    azure_proxy: tuple, conforming_chat_reply: Dict[str, Any]
) -> None:
    proxy, upstream = azure_proxy
    upstream.reply = conforming_chat_reply
    response = requests.post(proxy.url + CHAT_PATH, json=CHAT_BODY, headers={"api-key": "x"}, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200 and violations(response) == []
    assert upstream.seen_paths[-1] == CHAT_PATH  # the /openai prefix reaches the upstream intact


def test_proxy_turns_a_schema_breaking_response_into_500(
    azure_proxy: tuple, conforming_chat_reply: Dict[str, Any]
) -> None:
    proxy, upstream = azure_proxy
    upstream.reply = {key: value for key, value in conforming_chat_reply.items() if key != "choices"}
    response = requests.post(proxy.url + CHAT_PATH, json=CHAT_BODY, headers={"api-key": "x"}, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 500
    assert any("response.body" in v and "choices" in v for v in violations(response)), violations(response)


def test_proxy_rejects_an_invalid_request_without_forwarding_it(azure_proxy: tuple) -> None:
    proxy, upstream = azure_proxy
    forwarded_before = len(upstream.seen_paths)
    bad_body = {"messages": [{"role": "wizard", "content": "hi"}]}
    response = requests.post(proxy.url + CHAT_PATH, json=bad_body, headers={"api-key": "x"}, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 422
    assert any("role" in v for v in violations(response))
    assert len(upstream.seen_paths) == forwarded_before
