"""The Emulator: a threaded loopback HTTP server that records requests and plays scripted faults."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union
from urllib.parse import parse_qsl, urlsplit

from .errors import AZURE, OPENAI, openai_error
from .faults import Fault, FaultPlan, Matcher
from .multipart import is_multipart, parse_multipart
from .playback import play
from .quota import QuotaBook, QuotaSpec, deployment_of, estimated_tokens, metered
from .recording import Headers, RecordedRequest, loose_json
from .reply import SEND_NOTHING, SEND_TRUNCATED, Reply, json_reply
from .routes import Service, dialect_for, match_route, typed_for_azure_v1
from .tokens import TokenIssuer

READY_TIMEOUT_SECONDS = 5.0
STOP_JOIN_SECONDS = 5.0
# Idle keep-alive connections give their thread back after this long.
IDLE_CONNECTION_SECONDS = 30.0

# Plausible rate-limit headers: the values are fixed because clients treat them as hints.
OPENAI_RATE_HEADERS = (
    ("x-ratelimit-limit-requests", "10000"),
    ("x-ratelimit-limit-tokens", "2000000"),
    ("x-ratelimit-remaining-requests", "9999"),
    ("x-ratelimit-remaining-tokens", "1999000"),
    ("x-ratelimit-reset-requests", "6ms"),
    ("x-ratelimit-reset-tokens", "30ms"),
)
AZURE_RATE_HEADERS = (
    ("x-ratelimit-remaining-requests", "999"),
    ("x-ratelimit-remaining-tokens", "999000"),
)


def deployment_table(deployments: Union[None, Iterable[str], Mapping[str, str]]) -> Optional[Dict[str, str]]:
    """{deployment name: model} from names (each serving the model it is named after) or a mapping."""
    if deployments is None:
        return None
    if isinstance(deployments, Mapping):
        return {str(name): str(model) for name, model in deployments.items()}
    if isinstance(deployments, str):
        raise TypeError("deployments must be a collection of names, not one string")
    return {str(name): str(name) for name in deployments}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Emulator:
    """A local stand-in for Azure OpenAI and OpenAI. Nothing is bound until `start()`."""

    def __init__(
        self,
        api_key: str = "emulator-key",
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        bearer_tokens: Iterable[str] = (),
        deployments: Union[None, Iterable[str], Mapping[str, str]] = None,
        quota: Optional[QuotaSpec] = None,
        quota_time_scale: float = 1.0,
        quota_clock: Callable[[], float] = time.monotonic,
        deployment_models: Optional[Mapping[str, str]] = None,
        tls: Optional[ssl.SSLContext] = None,
    ) -> None:
        """`deployments`: the Azure deployment (and OpenAI model) names inference accepts, as
        names or as {name: model served}; others get 404 DeploymentNotFound / model_not_found.
        None (the default) accepts any name; `lifecycle.DEFAULT_DEPLOYMENTS` is the CLI's set.
        `deployment_models` maps names to the model behind them while accepting any other name,
        so a deployment called `prod-chat` can be backed by a reasoning model and refuse what it
        refuses."""
        if not is_loopback(host):
            raise ValueError(f"the emulator only listens on loopback addresses, not {host!r}")
        self.latency = float(latency)
        self._host = host
        self._port = int(port)
        self._service = Service(api_key=api_key, bearer_tokens=frozenset(bearer_tokens),
                                deployments=deployment_table(deployments),
                                deployment_models=dict(deployment_models or {}))
        self._tls = tls  # a server-side context: serve https (azure-identity needs https authorities)
        self._lock = threading.Lock()
        self._requests: List[RecordedRequest] = []
        self._faults_served: List[Tuple[int, str]] = []
        self._plan = FaultPlan()
        self._serial = 0
        self._in_flight = 0
        self._peak = 0
        self._connections: Set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        #: Quota mode (see quota.py): None when every deployment is unlimited.
        self.quota = None if quota is None else QuotaBook(quota, time_scale=quota_time_scale, clock=quota_clock)

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> "Emulator":
        if self._server is not None:
            return self
        self._stopping.clear()
        server_class = _Server6 if ":" in self._host else _Server
        server = server_class((self._host, self._port), _Handler)
        server.emulator = self
        server.tls = self._tls
        self._server = server
        self._service.base_url = self.url
        serving = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(server, serving), name=f"emulator-{server.server_address[1]}", daemon=True
        )
        self._thread.start()
        if not serving.wait(READY_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError("the emulator thread did not start")
        self._wait_until_accepting()
        return self

    @staticmethod
    def _serve(server: "_Server", serving: threading.Event) -> None:
        serving.set()
        server.serve_forever(poll_interval=0.05)

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        address = self._server.server_address[:2]  # type: ignore[union-attr]
        while True:
            try:
                with socket.create_connection(address, timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the emulator is not accepting connections on {self.url}")
                self._stopping.wait(0.01)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = None
        self._thread = None
        # Wake requests sleeping through latency so their threads can finish.
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(STOP_JOIN_SECONDS)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # --- what callers read -------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        port = self._server.server_address[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    @property
    def api_key(self) -> str:
        return self._service.api_key

    @property
    def deployments(self) -> Optional[Dict[str, str]]:
        """The known deployment names and their models (None: any name is accepted)."""
        table = self._service.deployments
        return dict(table) if table is not None else None

    @property
    def tokens(self) -> TokenIssuer:
        """The emulator's token endpoint: its issued tokens, and `expire()` to revoke them early."""
        return self._service.tokens

    @property
    def requests(self) -> List[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def peak_concurrency(self) -> int:
        with self._lock:
            return self._peak

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def faults_served(self) -> List[Tuple[int, str]]:
        with self._lock:
            return list(self._faults_served)

    # --- scripting ---------------------------------------------------------------

    def script(self, fault: Fault, times: Optional[int] = 1, match: Matcher = None) -> None:
        """The next `times` requests that `match` get `fault` (times=None: all of them)."""
        with self._lock:
            self._plan.script(fault, times, match)

    def random_faults(
        self, rate: float = 0.1, faults: Optional[Sequence[Fault]] = None, seed: Optional[int] = 1234
    ) -> None:
        """Give each request a random fault with probability `rate` (0 turns this off)."""
        with self._lock:
            self._plan.set_random(rate, faults, seed)

    def reset(self) -> None:
        """Forget requests, counters and faults; latency, key and stored files stay."""
        with self._lock:
            self._requests.clear()
            self._faults_served.clear()
            self._plan.clear()
            self._peak = self._in_flight
        if self.quota is not None:
            self.quota.forget()

    # --- called by the request handler --------------------------------------------

    def _admit(self, request: RecordedRequest) -> Tuple[RecordedRequest, Optional[Fault], int]:
        with self._lock:
            fault = self._plan.next_fault(request)
            index = len(self._requests)
            if fault is not None:
                request = dataclasses.replace(request, fault=fault.kind)
                self._faults_served.append((index, fault.kind))
            self._requests.append(request)
            self._serial += 1
            self._in_flight += 1
            if self._in_flight > self._peak:
                self._peak = self._in_flight
            return request, fault, self._serial

    def _depart(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _answer(self, request: RecordedRequest, json_ok: bool, fault: Optional[Fault], serial: int) -> Reply:
        quota_headers, refusal = self._spend_quota(request) if fault is None else ({}, None)
        if refusal is not None:
            return refusal  # refused at arrival, as Azure does: no latency
        delay = self.latency + (fault.delay if fault is not None else 0.0)
        if delay > 0:
            self._stopping.wait(delay)

        def normal_answer() -> Reply:
            return self._service.answer(request, json_ok, serial)

        if fault is None:
            reply = normal_answer()
            reply.headers.update(quota_headers)
        else:
            reply = play(fault, request, normal_answer)
        return typed_for_azure_v1(request.path, reply)

    def _spend_quota(self, request: RecordedRequest) -> Tuple[Dict[str, str], Optional[Reply]]:
        """Quota mode's rate-limit headers for an authorized metered request, and its 429 when
        the deployment's budget is spent (no headers and no refusal outside quota mode)."""
        if self.quota is None or not metered(request.path):
            return {}, None
        dialect = dialect_for(request.path)
        deployment = deployment_of(request.path, request.json)
        if deployment is None or not self._service.authorized(request, dialect):
            return {}, None
        verdict = self.quota.check(deployment, estimated_tokens(request.json))
        if verdict is None:
            return {}, None
        headers = verdict.headers(dialect)
        if verdict.admitted:
            return headers, None
        found = match_route(request.path)
        body = verdict.refusal_body(dialect, found[0].operation if found else "the",
                                    request.query.get("api-version"))
        return headers, json_reply(429, body, headers)

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    emulator: Emulator
    tls: Optional[ssl.SSLContext] = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, on the connection's own thread, not in the accept loop.
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            secure = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()  # the plain socket was handed over to it

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer are normal under fault injection and load.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azure-openai-emulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_SECONDS
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:
        self._serve()

    # Every method reaches the router, so an unsupported one gets the API's 405, not http.server's 501.
    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        started = time.perf_counter()
        emulator = self.server.emulator
        try:
            body = self._read_body()
        except ValueError as problem:
            self.close_connection = True
            self._write(json_reply(400, openai_error(str(problem), "invalid_request_error")), OPENAI, 0, started)
            return
        request, json_ok = self._record(body)
        request, fault, serial = emulator._admit(request)
        try:
            reply = emulator._answer(request, json_ok, fault, serial)
        except Exception as error:  # an emulator bug must still answer, like a real 500
            reply = json_reply(500, openai_error(f"Emulator error: {error!r}", "server_error"))
        finally:
            # Leave before writing, so a client holding its answer never sees itself in flight.
            emulator._depart()
        self._write(reply, dialect_for(request.path), serial, started)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("content-length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise ValueError(f"Invalid Content-Length header: {length_header!r}") from None
        if length < 0:
            raise ValueError(f"Invalid Content-Length header: {length_header!r}")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        pieces = []
        while True:
            size_line = self.rfile.readline(65537)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise ValueError("Malformed chunked request body") from None
            if size == 0:
                # Skip trailers up to the blank line that ends the body.
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(pieces)
            pieces.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _record(self, body: bytes) -> Tuple[RecordedRequest, bool]:
        split = urlsplit(self.path)
        headers = Headers(self.headers.items())
        content_type = headers.get("content-type", "")
        files: list = []
        form: dict = {}
        json_ok, parsed = False, None
        if is_multipart(content_type):
            files, form = parse_multipart(content_type, body)
        else:
            json_ok, parsed = loose_json(body)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        request = RecordedRequest(self.command, split.path, query, headers, body, parsed, files, form)
        return request, json_ok

    def _write(self, reply: Reply, dialect: str, serial: int, started: float) -> None:
        if reply.delivery == SEND_NOTHING:
            self.close_connection = True
            return
        headers = {
            "content-type": reply.content_type,
            "content-length": str(len(reply.body)),
            "date": self.date_time_string(),
            "x-request-id": f"req_{serial:016x}",
            "openai-processing-ms": str(int((time.perf_counter() - started) * 1000)),
        }
        if dialect == OPENAI:
            headers["openai-version"] = "2020-10-01"
            headers.update(OPENAI_RATE_HEADERS)
        elif dialect == AZURE:
            headers["apim-request-id"] = f"00000000-0000-4000-8000-{serial:012x}"
            headers.update(AZURE_RATE_HEADERS)
        for name, value in reply.headers.items():
            headers[name.lower()] = value
        body = reply.body
        if reply.delivery == SEND_TRUNCATED:
            self.close_connection = True
            body = body[: len(body) // 2]
        if self.close_connection:
            headers["connection"] = "close"
        head = [f"{self.protocol_version} {reply.status} {_reason(reply.status)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if self.command == "HEAD":
            body = b""
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", errors="replace") + body
        try:
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True


def _reason(status: int) -> str:
    return BaseHTTPRequestHandler.responses.get(status, ("Unknown",))[0]
