"""The playground's HTTP handler: routes to `PlaygroundApp` behind the guards against other web pages.

It listens on 127.0.0.1 only and, like Jupyter, is guarded against other web pages open in the
same browser (the page can run steps with the credentials in the environment):

- a random token, printed at start, is required by every API call: the ``X-Playground-Token``
  header, or the HttpOnly, SameSite=Strict cookie that opening ``/?token=...`` sets;
- a ``Host`` other than ``127.0.0.1:PORT`` / ``localhost:PORT`` is refused (DNS rebinding), and so
  is an ``Origin`` other than the page's own, or a cross-site ``Sec-Fetch-Site`` on the API;
- ``POST /api/run`` and ``POST /api/options`` take ``application/json`` only (no form posts from elsewhere);
- every answer carries a Content-Security-Policy (scripts from this server only), ``X-Frame-Options:
  DENY`` and ``Referrer-Policy: no-referrer``; API answers are ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
import json
import logging
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from .app import STATIC_FILES, PlaygroundApp, PlaygroundError

LOG = logging.getLogger(__name__)

TOKEN_HEADER = "X-Playground-Token"
MAX_BODY_BYTES = 64 * 1024 * 1024

# ajv (inside the forms bundle) compiles each schema into a function, hence 'unsafe-eval';
# scripts themselves still come only from this server.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self' 'unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data: https: http://127.0.0.1:* http://localhost:*",  # generated images
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)

_FORBIDDEN_PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Playground: token required</title></head><body>
<h1>Token required</h1><p>Open the address the playground printed when it started
(<code>http://127.0.0.1:PORT/?token=...</code>).</p></body></html>"""


class PlaygroundHTTPServer(ThreadingHTTPServer):
    """The listening socket; carries the app and the access token the handler checks."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: Tuple[str, int], app: PlaygroundApp, token: str) -> None:
        super().__init__(address, PlaygroundHandler)
        self.app = app
        self.token = token


class PlaygroundHandler(BaseHTTPRequestHandler):
    """One request: the guards, then the page, a static file or one of the API calls."""

    server_version = "azure-openai-playground/1.0"
    sys_version = ""
    timeout = 60
    server: PlaygroundHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        # The request line can carry ?token=: log the path only, at DEBUG.
        LOG.debug("%s %s", self.command, urlsplit(self.path).path)

    # --- dispatch ----------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_POST

    def _dispatch(self) -> None:
        app = self.server.app
        try:
            self._check_host_and_origin()
            path = urlsplit(self.path).path
            if path == "/":
                self._require_method("GET")
                self._page()
            elif path.startswith("/static/"):
                self._require_method("GET")
                name = path[len("/static/"):]
                content = app.static(name) if name in STATIC_FILES else None
                if content is None:
                    raise PlaygroundError(404, "not_found", "no such file")
                self._send(200, content, STATIC_FILES[name], cache="no-cache")
            elif path == "/favicon.ico":
                self._require_method("GET")
                icon = app.icon()
                if icon is None:
                    raise PlaygroundError(404, "not_found", "no icon")
                self._send(200, icon[1], icon[0], cache="no-cache")
            elif path == "/api/connector":
                self._require_method("GET")
                self._check_api_access()
                self._send(200, app.connector_document(), "application/json; charset=utf-8")
            elif path == "/api/run":
                self._require_method("POST")
                self._check_api_access()
                # Cookies ignore ports, so any server on 127.0.0.1 may receive this one: running
                # a step also needs the header only the page (or a caller given the token) sets.
                if not self._token_ok(self.headers.get(TOKEN_HEADER)):
                    raise PlaygroundError(403, "forbidden", f"running a step needs the {TOKEN_HEADER} header")
                self._send_json(200, app.run(self._read_json()))
            elif path == "/api/options":
                self._require_method("POST")
                self._check_api_access()
                self._send_json(200, app.options(self._read_json()))
            else:
                raise PlaygroundError(404, "not_found", "no such page")
        except PlaygroundError as refused:
            self.close_connection = True
            self._send_json(refused.status, {"ok": False, "error": {"type": refused.kind,
                                                                    "message": refused.message}})

    # --- guards ------------------------------------------------------------------

    def _allowed_hosts(self) -> Tuple[str, ...]:
        port = self.server.server_address[1]
        return (f"127.0.0.1:{port}", f"localhost:{port}")

    def _check_host_and_origin(self) -> None:
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self._allowed_hosts():
            raise PlaygroundError(403, "forbidden", "unexpected Host header")
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() != f"http://{host}":
            raise PlaygroundError(403, "forbidden", "cross-origin requests are not allowed")

    def _check_api_access(self) -> None:
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise PlaygroundError(403, "forbidden", "cross-site requests are not allowed")
        if not self._token_ok(self.headers.get(TOKEN_HEADER)) and not self._token_ok(self._cookie_token()):
            raise PlaygroundError(403, "forbidden", "missing or wrong playground token; open the URL the "
                                                    "playground printed at start")

    def _token_ok(self, candidate: Optional[str]) -> bool:
        if not candidate:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.server.token.encode("utf-8"))

    def _cookie_name(self) -> str:
        # Cookies ignore ports: one name per port keeps two playgrounds apart.
        return f"aoc_playground_{self.server.server_address[1]}"

    def _cookie_token(self) -> Optional[str]:
        jar = cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie") or "")
        except cookies.CookieError:
            return None
        morsel = jar.get(self._cookie_name())
        return morsel.value if morsel is not None else None

    def _require_method(self, method: str) -> None:
        if self.command != method:
            raise PlaygroundError(405, "method_not_allowed", f"use {method}")

    # --- the page ----------------------------------------------------------------

    def _page(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        given = (query.get("token") or [None])[0]
        if given is not None:
            if not self._token_ok(given):
                raise PlaygroundError(403, "forbidden", "wrong playground token")
            # Keep the token out of the address bar and history: a cookie carries it from now on.
            cookie = f"{self._cookie_name()}={self.server.token}; Path=/; HttpOnly; SameSite=Strict"
            self._send(303, b"", "text/plain; charset=utf-8", extra=(("Location", "/"), ("Set-Cookie", cookie)))
            return
        if not self._token_ok(self._cookie_token()):
            self._send(403, _FORBIDDEN_PAGE, "text/html; charset=utf-8")
            return
        page = self.server.app.static("index.html") or b""
        # The page's script sends the token back in a header; the token is URL-safe base64.
        meta = f'<meta name="playground-token" content="{self.server.token}">'.encode("ascii")
        page = page.replace(b'<meta charset="utf-8">', b'<meta charset="utf-8">\n  ' + meta, 1)
        self._send(200, page, "text/html; charset=utf-8")

    # --- I/O -----------------------------------------------------------------------

    def _read_json(self) -> Any:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise PlaygroundError(415, "unsupported_media_type", "send application/json")
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise PlaygroundError(411, "length_required", "send a Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise PlaygroundError(411, "length_required", "send a Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise PlaygroundError(413, "too_large", f"the body may have at most {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(length)
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested ~1,000 deep
            raise PlaygroundError(400, "invalid_request", "the body is not valid JSON") from None

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str, *, cache: str = "no-store",
              extra: Tuple[Tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        for name, value in SECURITY_HEADERS + tuple(extra):
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
