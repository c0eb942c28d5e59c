"""The playground's HTTP server: the page, its static files and a two-call JSON API.

    GET  /                 the page (needs the token: ?token=... once, then the cookie it sets)
    GET  /static/NAME      the page's script, style sheet and the vendored forms bundle
    GET  /api/connector    icon, label, description, the connection form, every action with its form
    POST /api/run          {action, connection, inputs} -> {ok, result | error, duration_ms, ran_on}

It listens on 127.0.0.1 only and, like Jupyter, is guarded against other web pages open in the
same browser (the page can run steps with the credentials in the environment):

- a random token, printed at start, is required by every API call: the ``X-Playground-Token``
  header, or the HttpOnly, SameSite=Strict cookie that opening ``/?token=...`` sets;
- a ``Host`` other than ``127.0.0.1:PORT`` / ``localhost:PORT`` is refused (DNS rebinding), and so
  is an ``Origin`` other than the page's own, or a cross-site ``Sec-Fetch-Site`` on the API;
- ``POST /api/run`` takes ``application/json`` only (no form posts from elsewhere);
- every answer carries a Content-Security-Policy (scripts from this server only), ``X-Frame-Options:
  DENY`` and ``Referrer-Policy: no-referrer``; API answers are ``Cache-Control: no-store``.

Steps run through ``azure_openai_connector.run_action``, exactly as a host runs them. When the
page's connection has no API key, the server's connection is used: the environment's credentials
(as the CLI reads them), or else the emulator started with the playground. API keys are never
sent back (every answer is scrubbed of them), never logged and never written anywhere.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import secrets
import threading
import time
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from ..errors import ConnectorError

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Playground-Token"
MAX_BODY_BYTES = 64 * 1024 * 1024
REDACTED = "[REDACTED]"
# Shorter keys are scrubbed only where a whole string equals them (a 3-letter key would otherwise
# mangle every word that contains it).
MIN_SCRUB_SUBSTRING = 6

STATIC_FILES = {
    "forms.bundle.js": "text/javascript; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
    "THIRD_PARTY_LICENSES.txt": "text/plain; charset=utf-8",
}
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

Runner = Callable[[str, Optional[Mapping[str, Any]], Optional[Mapping[str, Any]]], Dict[str, Any]]


class PlaygroundError(Exception):
    """A request the playground refuses before running anything: (status, type, message)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class Playground:
    """The playground server; nothing is bound until `start()`. Use as a context manager.

    `environ` is where credentials are looked for (default: `os.environ`); `runner` runs a step
    (default: `azure_openai_connector.run_action`, the path a host takes).
    """

    def __init__(self, *, port: int = 0, environ: Optional[Mapping[str, str]] = None,
                 token: Optional[str] = None, runner: Optional[Runner] = None) -> None:
        self._port = int(port)
        self._environ = dict(os.environ if environ is None else environ)
        self.token = token or secrets.token_urlsafe(32)
        self._runner = runner
        self._emulator: Any = None
        self._emulator_key = ""
        self._env_connection: Optional[Dict[str, Any]] = None
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._static: Dict[str, bytes] = {}
        self._connector_document: Optional[bytes] = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> "Playground":
        if self._server is not None:
            return self
        from ..cli import connection_from_env

        self._env_connection = connection_from_env(self._environ)
        if self._env_connection is None:
            from ..emulator import Emulator

            self._emulator_key = "playground-" + secrets.token_urlsafe(16)
            self._emulator = Emulator(api_key=self._emulator_key).start()
        try:
            self._load_static()
            server = _Server((HOST, self._port), _Handler)
        except BaseException:
            self._stop_emulator()
            raise
        server.playground = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"playground-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5.0)
        self._stop_emulator()

    def _stop_emulator(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None

    def __enter__(self) -> "Playground":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the playground is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The page's address without the token."""
        return f"http://{HOST}:{self.port}/"

    @property
    def page_url(self) -> str:
        """The address to open: it carries the token once, then a cookie does."""
        return f"{self.url}?token={self.token}"

    @property
    def emulator(self) -> Any:
        """The emulator started with the playground (None when the environment has credentials)."""
        return self._emulator

    @property
    def server_connection(self) -> Dict[str, Any]:
        """Where a step without an API key runs (no secrets): source, service, note."""
        if self._env_connection is not None:
            service = "openai" if self._env_connection.get("is_openai_key") else "azure"
            variable = "OPENAI_API_KEY" if service == "openai" else "AZURE_OPENAI_API_KEY"
            name = "OpenAI" if service == "openai" else "Azure OpenAI"
            return {"source": "environment", "service": service,
                    "note": f"Leave API Key empty to use the {name} credentials from {variable}; "
                            f"the other connection fields then come from the environment too."}
        return {"source": "emulator", "service": None,
                "note": "No credentials in the environment: leave API Key empty to run against the "
                        "built-in emulator (Is OpenAI Key picks its OpenAI or Azure flavour)."}

    # --- the API -----------------------------------------------------------------

    def connector_document(self) -> bytes:
        if self._connector_document is None:
            self._connector_document = json.dumps(self._describe(), ensure_ascii=False).encode("utf-8")
        return self._connector_document

    def _describe(self) -> Dict[str, Any]:
        from ..forms import action_form, connection_form
        from ..manifest import load_manifest

        raw = load_manifest().raw
        connector = raw["connector"]
        connection = connection_form(raw)
        # The server can supply the key, so the page's form may leave it empty.
        connection["schema"]["required"] = [name for name in connection["schema"].get("required", ())
                                            if name != "api_key"]
        placeholder = ("(empty: the environment's key)" if self._env_connection is not None
                       else "(empty: the built-in emulator)")
        connection["uiSchema"].setdefault("api_key", {})["ui:placeholder"] = placeholder
        return {
            "connector": {**{key: connector.get(key) for key in ("key", "label", "description", "version",
                                                                 "documentation_url")},
                          "icon": _icon_data_url(connector.get("icon"))},
            "connection": {"label": raw["connection"]["label"], "form": connection},
            "actions": [{"key": key, "label": spec["label"], "description": spec["description"],
                         "form": action_form(raw, key)} for key, spec in raw["actions"].items()],
            "server_connection": self.server_connection,
        }

    def run(self, request: Any) -> Dict[str, Any]:
        """Run one step for the page; the answer never contains an API key."""
        if not isinstance(request, dict):
            raise PlaygroundError(400, "invalid_request", "the body must be a JSON object")
        action = request.get("action")
        connection = request.get("connection")
        connection = {} if connection is None else connection
        inputs = request.get("inputs")
        inputs = {} if inputs is None else inputs
        if not isinstance(action, str) or not action:
            raise PlaygroundError(400, "invalid_request", "'action' must be an action key")
        if not isinstance(connection, dict):
            raise PlaygroundError(400, "invalid_request", "'connection' must be an object")
        if not isinstance(inputs, dict):
            raise PlaygroundError(400, "invalid_request", "'inputs' must be an object")
        secrets_seen = [self._emulator_key, (self._env_connection or {}).get("api_key"), connection.get("api_key")]
        connection, ran_on = self._resolve_connection(connection)
        runner = self._runner
        if runner is None:
            import azure_openai_connector

            runner = azure_openai_connector.run_action
        started = time.perf_counter()
        answer: Dict[str, Any]
        try:
            answer = {"ok": True, "result": runner(action, connection, inputs)}
        except ConnectorError as error:
            answer = {"ok": False, "error": error.to_dict()}
        except Exception as error:  # noqa: BLE001 - the page shows it instead of a dropped request
            answer = {"ok": False, "error": {"type": "internal_error",
                                             "message": f"{type(error).__name__}: {error}"}}
            LOG.error("step %s failed unexpectedly: %s", action,
                      scrub(f"{type(error).__name__}: {error}", secrets_seen))
        answer["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        answer["ran_on"] = ran_on
        return scrub(answer, secrets_seen)

    def _resolve_connection(self, page: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        if page.get("api_key") not in (None, ""):
            service = "openai" if page.get("is_openai_key") else "azure"
            return page, {"source": "page", "service": service}
        if self._env_connection is not None:
            service = "openai" if self._env_connection.get("is_openai_key") else "azure"
            return dict(self._env_connection), {"source": "environment", "service": service}
        if self._emulator is None:
            raise PlaygroundError(409, "no_connection", "no API key given and no server connection")
        openai = page.get("is_openai_key") is True
        connection = {name: value for name, value in page.items()
                      if name not in ("api_key", "endpoint") and value not in (None, "")}
        connection.update(api_key=self._emulator_key,
                          endpoint=self._emulator.url + ("/v1" if openai else ""))
        return connection, {"source": "emulator", "service": "openai" if openai else "azure"}

    # --- static files ------------------------------------------------------------

    def _load_static(self) -> None:
        base = resources.files(__package__) / "static"
        for name in list(STATIC_FILES) + ["index.html"]:
            self._static[name] = (base / name).read_bytes()

    def static(self, name: str) -> Optional[bytes]:
        return self._static.get(name)

    def icon(self) -> Optional[Tuple[str, bytes]]:
        """The connector's icon: (content type, bytes), or None."""
        from ..manifest import load_manifest

        return _icon(load_manifest().raw["connector"].get("icon"))


def scrub(value: Any, keys: List[Optional[str]]) -> Any:
    """`value` with every API key in `keys` replaced, in strings and in object keys, at any depth."""
    keys = sorted({key for key in keys if isinstance(key, str) and key}, key=len, reverse=True)
    if not keys:
        return value

    def text(item: str) -> str:
        for key in keys:
            if item == key:
                return REDACTED
            if len(key) >= MIN_SCRUB_SUBSTRING and key in item:
                item = item.replace(key, REDACTED)
        return item

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            return {text(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def _icon(icon_path: Optional[str]) -> Optional[Tuple[str, bytes]]:
    """The manifest's icon (packaged in data/ under its file name): (content type, bytes), or None."""
    if not icon_path:
        return None
    name = icon_path.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        content = (resources.files("azure_openai_connector") / "data" / name).read_bytes()
    except (FileNotFoundError, OSError):
        return None
    kind = {"svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}.get(
        name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    return kind, content


def _icon_data_url(icon_path: Optional[str]) -> Optional[str]:
    """The manifest's icon as a data: URL, or None."""
    icon = _icon(icon_path)
    if icon is None:
        return None
    return f"data:{icon[0]};base64,{base64.b64encode(icon[1]).decode('ascii')}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    playground: Playground


class _Handler(BaseHTTPRequestHandler):
    server_version = "azure-openai-playground/1.0"
    sys_version = ""
    timeout = 60
    server: _Server

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
        playground = self.server.playground
        try:
            self._check_host_and_origin()
            path = urlsplit(self.path).path
            if path == "/":
                self._require_method("GET")
                self._page()
            elif path.startswith("/static/"):
                self._require_method("GET")
                name = path[len("/static/"):]
                content = playground.static(name) if name in STATIC_FILES else None
                if content is None:
                    raise PlaygroundError(404, "not_found", "no such file")
                self._send(200, content, STATIC_FILES[name], cache="no-cache")
            elif path == "/favicon.ico":
                self._require_method("GET")
                icon = playground.icon()
                if icon is None:
                    raise PlaygroundError(404, "not_found", "no icon")
                self._send(200, icon[1], icon[0], cache="no-cache")
            elif path == "/api/connector":
                self._require_method("GET")
                self._check_api_access()
                self._send(200, playground.connector_document(), "application/json; charset=utf-8")
            elif path == "/api/run":
                self._require_method("POST")
                self._check_api_access()
                answer = playground.run(self._read_json())
                self._send_json(200, answer)
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
        return hmac.compare_digest(candidate.encode("utf-8", "replace"),
                                   self.server.playground.token.encode("utf-8"))

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
            cookie = f"{self._cookie_name()}={self.server.playground.token}; Path=/; HttpOnly; SameSite=Strict"
            self._send(303, b"", "text/plain; charset=utf-8", extra=(("Location", "/"), ("Set-Cookie", cookie)))
            return
        if not self._token_ok(self._cookie_token()):
            self._send(403, _FORBIDDEN_PAGE, "text/html; charset=utf-8")
            return
        self._send(200, self.server.playground.static("index.html") or b"", "text/html; charset=utf-8")

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
        except (UnicodeDecodeError, ValueError):
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


_FORBIDDEN_PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Playground: token required</title></head><body>
<h1>Token required</h1><p>Open the address the playground printed when it started
(<code>http://127.0.0.1:PORT/?token=...</code>).</p></body></html>"""


def serve(*, port: int = 0, environ: Optional[Mapping[str, str]] = None, open_browser: bool = False) -> int:
    """Run the playground until interrupted (Ctrl+C or SIGTERM); prints the URL to open on stdout."""
    import signal
    import sys

    stopping = threading.Event()
    playground = Playground(port=port, environ=environ)
    try:
        playground.start()
    except OSError as error:
        sys.stderr.write(f"cannot listen on {HOST}:{port}: {error}\n")
        return 1
    previous = None
    try:
        try:
            previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        except ValueError:  # not the main thread
            previous = None
        where = playground.server_connection
        sys.stderr.write(
            "Azure OpenAI connector playground\n"
            + ("  steps without an API key run on the environment's credentials\n" if where["source"] == "environment"
               else "  no credentials in the environment: steps without an API key run on the built-in emulator\n")
            + "  open this address in a browser (it carries the access token); Ctrl+C stops the server:\n")
        sys.stderr.flush()
        sys.stdout.write(playground.page_url + "\n")
        sys.stdout.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(playground.page_url)
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        playground.stop()
        sys.stderr.write("playground stopped\n")
    return 0
