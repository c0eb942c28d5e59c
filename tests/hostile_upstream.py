"""A hostile upstream for the hardening tests: a threaded `http.server` on 127.0.0.1, port 0.

Each path is one misbehaviour (a huge body, a gzip bomb, a trickle, JSON nested 1,000 deep, an
error echoing the caller's key in every field, an infinite Retry-After, answers that break the
chat contract). It records nothing and shares no code with the connector.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional

#: How long a trickle goes on at most (the connector must give up well before).
TRICKLE_SECONDS = 30
HUGE_BYTES = 256 * 1024 * 1024
BOMB_INFLATED_BYTES = 256 * 1024 * 1024


def _gzip_bomb(inflated: int) -> bytes:
    """A gzip body that inflates to `inflated` zero bytes (about a thousandth of that on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(inflated // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


class HostileUpstream:
    """Start with `with HostileUpstream(key) as upstream:`; `upstream.url` is its base URL."""

    def __init__(self, echoed_key: str) -> None:
        self.echoed_key = echoed_key
        self._bomb: Optional[bytes] = None
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def bomb(self) -> bytes:
        if self._bomb is None:
            self._bomb = _gzip_bomb(BOMB_INFLATED_BYTES)
        return self._bomb

    def __enter__(self) -> "HostileUpstream":
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _route(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                segments = self.path.split("?")[0].split("/")
                name = next((segment for segment in segments if segment in ROUTES), "")
                ROUTES.get(name, _not_found)(self, upstream)

            do_GET = do_POST = _route

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes,
          headers: Optional[Dict[str, str]] = None) -> None:
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _not_found(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 404, b'{"error":{"message":"no such hostility"}}')


def _huge(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    """A declared-length body of HUGE_BYTES, written until the client hangs up."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(HUGE_BYTES))
    handler.end_headers()
    block = bytes(1024 * 1024)
    try:
        for _ in range(HUGE_BYTES // len(block)):
            handler.wfile.write(block)
    except OSError:
        pass


def _huge_chunked(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    """The same size without a Content-Length: the client only learns the size by reading."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    block = bytes(1024 * 1024)
    try:
        for _ in range(HUGE_BYTES // len(block)):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
        handler.wfile.write(b"0\r\n\r\n")
    except OSError:
        pass


def _gzip_bomb_route(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 200, upstream.bomb(), {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"})


def _trickle(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    """A byte every half second for up to TRICKLE_SECONDS (each read alone is quick)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Content-Length", str(TRICKLE_SECONDS * 2))
    handler.end_headers()
    try:
        for _ in range(TRICKLE_SECONDS * 2):
            if upstream._stopping.wait(0.5):
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()
    except OSError:
        pass


def _deep_json(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 200, b'{"choices":' + b"[" * 1000 + b"]" * 1000 + b"}")


def _deep_error(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 400, b'{"error":' + b"[" * 1000 + b"]" * 1000 + b"}")


def _echo_key(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    """An error quoting the key in every field a client might show."""
    key = upstream.echoed_key
    body = {"error": {"message": f"bad key {key}", "code": f"code-{key}", "param": f"param-{key}",
                      "type": f"type-{key}", "innererror": {"code": "ResponsibleAIPolicyViolation",
                                                            "content_filter_result": {"note": key},
                                                            "revised_prompt": key}}}
    _send(handler, 400, json.dumps(body).encode(), {"x-request-id": f"req-{key}"})


def _echo_key_binary(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 200, b"\x00\x01" + upstream.echoed_key.encode() + b"\xff",
          {"Content-Type": "application/octet-stream"})


def _echo_key_json(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 200, json.dumps({"echo": upstream.echoed_key,
                                    "encoded": base64.b64encode(b"x").decode()}).encode())


def _retry_after_infinite(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 429, b'{"error":{"message":"slow down","code":"rate_limit"}}', {"Retry-After": "1e400"})


def _retry_after_day(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 429, b'{"error":{"message":"slow down","code":"rate_limit"}}', {"Retry-After": "86400"})


def _index_a_list(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 200, json.dumps({"id": "x", "object": "chat.completion", "choices": [
        {"index": [0], "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}).encode())


def _content_a_number(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 200, json.dumps({"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": 42}, "finish_reason": "stop"}]}).encode())


def _nan_json(handler: BaseHTTPRequestHandler, upstream: HostileUpstream) -> None:
    _send(handler, 200, b'{"value": NaN, "other": Infinity}')


ROUTES: Dict[str, Callable[[BaseHTTPRequestHandler, HostileUpstream], None]] = {
    "huge": _huge, "huge-chunked": _huge_chunked, "gzip-bomb": _gzip_bomb_route, "trickle": _trickle,
    "deep-json": _deep_json, "deep-error": _deep_error, "echo-key": _echo_key,
    "echo-key-binary": _echo_key_binary, "echo-key-json": _echo_key_json,
    "retry-after-infinite": _retry_after_infinite, "retry-after-day": _retry_after_day,
    "index-a-list": _index_a_list, "content-a-number": _content_a_number, "nan-json": _nan_json,
}
