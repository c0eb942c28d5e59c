"""Run the pinned Stoplight Prism (tools/prism) against preprocessed copies of the official specs.

Test helper only: no pytest import, so scripts and benchmarks can reuse it.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
PRISM_TOOL_DIR = REPO_ROOT / "tools" / "prism"
PRISM_VERSION = "5.14.2"

OPENAI_SPEC_FILE = "openai-openapi.json"
AZURE_SPEC_FILE = "azure-openai-inference-2024-10-21.json"
AZURE_V1_SPEC_FILE = "azure-openai-v1.json"
AZURE_V1_PREVIEW_SPEC_FILE = "azure-openai-v1-preview.json"
# tests/specs/SOURCES.md: unmodified copies, read-only data, so any drift is a bug.
SPEC_SHA256 = {
    OPENAI_SPEC_FILE: "bbfd19abcde0e7412da99378deb2a959ccdd3a812f97c9e35901921e8e973f9a",
    AZURE_SPEC_FILE: "8efc665c79a5a5e7d3137d9378da074d9956d042150a1d0a6ffc6ba95cc1bf47",
    AZURE_V1_SPEC_FILE: "1eb122f13d2467bdff9e447cd79bb467d3df7ee3f54d50f7174339c711715bd6",
    AZURE_V1_PREVIEW_SPEC_FILE: "12d9176d7b21b134d754fec1a4051c9d7638e55b9b034c3eb91644d91656e853",
}
SPECS_DIR = REPO_ROOT / "tests" / "specs"

LOOPBACK = "127.0.0.1"
READY_MARKER = "Prism is listening on"
NPM_CI_TIMEOUT_S = 300.0
DEFAULT_READY_TIMEOUT_S = 240.0  # the OpenAI spec needs ~15 s alone, over 100 s on a loaded box
PORT_ATTEMPTS = 3  # binding port 0 then handing the number to Prism can race; retry a little
STOP_GRACE_S = 5.0
POLL_INTERVAL_S = 0.1


class PrismUnavailable(RuntimeError):
    """Node.js or npm is missing, so Prism cannot be installed here (tests should skip)."""


class PrismStartError(RuntimeError):
    """Prism was installed but did not come up; the message carries the tail of its log."""


# ---------------------------------------------------------------------------------------
# Installation


def prism_binary() -> Optional[Path]:
    """Path of the pinned Prism executable, or None when tools/prism is not installed."""
    bin_dir = PRISM_TOOL_DIR / "node_modules" / ".bin"
    for name in ("prism", "prism.cmd"):
        candidate = bin_dir / name
        if candidate.is_file():
            return candidate
    return None


def installed_prism_version() -> Optional[str]:
    """Version recorded in node_modules, read from disk (cheaper than starting node)."""
    manifest = PRISM_TOOL_DIR / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None


def ensure_prism_installed(timeout: float = NPM_CI_TIMEOUT_S) -> Path:
    """Return the Prism binary, running `npm ci` in tools/prism first if it is missing or stale.

    Raises PrismUnavailable when node/npm are absent and RuntimeError when npm fails.
    """
    binary = prism_binary()
    if binary is not None and installed_prism_version() == PRISM_VERSION:
        return binary
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise PrismUnavailable(
            f"{missing} not found on PATH; Prism {PRISM_VERSION} needs Node.js 20 and npm "
            f"(install them, then run: npm ci --no-audit --no-fund --prefix {PRISM_TOOL_DIR})"
        )
    command = [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(PRISM_TOOL_DIR)]
    try:
        result = subprocess.run(
            command, cwd=PRISM_TOOL_DIR, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"`{' '.join(command)}` did not finish within {timeout:.0f} s") from exc
    binary = prism_binary()
    if result.returncode != 0 or binary is None:
        raise RuntimeError(
            f"`{' '.join(command)}` failed (exit {result.returncode}):\n"
            f"{_tail(result.stdout)}\n{_tail(result.stderr)}"
        )
    if installed_prism_version() != PRISM_VERSION:
        raise RuntimeError(
            f"tools/prism installed Prism {installed_prism_version()}, expected {PRISM_VERSION}; "
            "check tools/prism/package-lock.json"
        )
    return binary


# ---------------------------------------------------------------------------------------
# Specs


def spec_path(file_name: str) -> Path:
    """Path of one vendored official spec (tests/specs)."""
    path = SPECS_DIR / file_name
    if not path.is_file():
        raise FileNotFoundError(f"spec {file_name} not found in {SPECS_DIR}")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_spec(path: Path) -> Any:
    """Parse a JSON or YAML OpenAPI document (YAML needs PyYAML, a project dependency)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml  # only the YAML twin of the OpenAI spec needs it

        return yaml.safe_load(text)
    return json.loads(text)


def _rewrite_for_prism(node: Any, fix_nullable: bool) -> None:
    if isinstance(node, dict):
        # Azure's x-ms-examples point at ./examples/*.json that are not shipped; Prism dies on them.
        node.pop("x-ms-examples", None)
        for key in list(node):
            _rewrite_for_prism(node[key], fix_nullable)
        # Prism's ajv cannot compile `nullable` without `type` and then silently skips
        # request validation for the whole operation; spell it as anyOf [schema, null].
        if fix_nullable and "nullable" in node and "type" not in node:
            if node.pop("nullable") is True:
                inner = dict(node)
                node.clear()
                description = inner.pop("description", None)
                node["anyOf"] = [inner, {"type": "null"}]
                if description is not None:
                    node["description"] = description
    elif isinstance(node, list):
        for item in node:
            _rewrite_for_prism(item, fix_nullable)


def preprocess_spec(src: Path, dst: Path, *, fix_nullable: bool = True) -> Path:
    """Write a Prism-ready copy of `src` to `dst` (the specs README recipe) and return `dst`.

    Strips x-ms-examples, turns nullable-without-type into anyOf [..., null] and prefixes
    every path with the path of servers[0].url (Prism ignores it). `fix_nullable=False`
    exists only to demonstrate that the nullable fix is needed; `src` is never modified.
    """
    document = load_spec(Path(src))
    _rewrite_for_prism(document, fix_nullable)
    _loosen_multipart_structures(document)
    server_url = (document.get("servers") or [{}])[0].get("url", "").replace("{endpoint}", "h")
    if server_url and "://" not in server_url:
        # The v1 specs' server is "{endpoint}/openai/v1": the scheme is inside {endpoint}.
        server_url = "https://" + server_url
    base_path = urlparse(server_url).path.rstrip("/")
    if base_path:
        document["paths"] = {base_path + key: value for key, value in document["paths"].items()}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", encoding="utf-8") as handle:
        json.dump(document, handle, default=str)
    return dst


def _loosen_multipart_structures(document: Any) -> None:
    """Prism reads every multipart field as a string, so an object or array property (the v1
    specs' `expires_after` on POST /files) could never pass: accept any value there (the field
    stays required), so every other field of the form is still checked."""
    schemas = document.get("components", {}).get("schemas", {})
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if not form or "schema" not in form:
                continue
            schema = form["schema"]
            if "$ref" in schema:
                schema = form["schema"] = json.loads(json.dumps(schemas[schema["$ref"].rsplit("/", 1)[-1]]))
            for name, field in schema.get("properties", {}).items():
                if isinstance(field, dict) and field.get("type") in ("object", "array"):
                    schema["properties"][name] = {}


def count_untyped_nullable(document: Any) -> int:
    """How many schemas carry `nullable` without `type` (each one disables Prism validation)."""
    if isinstance(document, dict):
        own = 1 if "nullable" in document and "type" not in document else 0
        return own + sum(count_untyped_nullable(value) for value in document.values())
    if isinstance(document, list):
        return sum(count_untyped_nullable(item) for item in document)
    return 0


# ---------------------------------------------------------------------------------------
# Server


def free_loopback_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (closed again, so a race is possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").splitlines()[-lines:])


_running_servers: "set[PrismServer]" = set()  # strong refs: a forgotten server still gets killed


@atexit.register
def _stop_leftover_servers() -> None:
    # Safety net for interrupted sessions: never leave a Prism process group behind.
    for server in list(_running_servers):
        server.stop()


class PrismServer:
    """One Prism process on 127.0.0.1:<free port>, usable as a context manager.

    `PrismServer.mock(spec)` answers from the spec; `PrismServer.proxy(spec, upstream)`
    forwards to `upstream` and, with --errors, turns schema-breaking responses into 500s.
    """

    def __init__(
        self,
        prism_args: Sequence[str],
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
        binary: Optional[Path] = None,
    ) -> None:
        self.prism_args = list(prism_args)
        self.ready_timeout = ready_timeout
        self.binary = binary
        self.port: Optional[int] = None
        self.startup_seconds: Optional[float] = None
        self._process: Optional[subprocess.Popen] = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="prism-log-"))
        self._log_path = self._log_dir / "prism.log"
        self._final_log: Optional[str] = None

    @classmethod
    def mock(cls, spec_path: Path, *, extra_args: Iterable[str] = (), **kwargs: Any) -> "PrismServer":
        return cls(["mock", *extra_args, str(spec_path)], **kwargs)

    @classmethod
    def proxy(
        cls,
        spec_path: Path,
        upstream_url: str,
        *,
        extra_args: Iterable[str] = (),
        **kwargs: Any,
    ) -> "PrismServer":
        return cls(["proxy", "--errors", *extra_args, str(spec_path), upstream_url], **kwargs)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("PrismServer is not started")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        """Everything Prism wrote to stdout/stderr so far (kept after stop)."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def start(self) -> "PrismServer":
        if self.running:
            return self
        binary = self.binary or prism_binary() or ensure_prism_installed()
        started = time.monotonic()
        last_error: Optional[PrismStartError] = None
        for _attempt in range(PORT_ATTEMPTS):
            self.port = free_loopback_port()
            self._spawn(binary)
            try:
                self._wait_until_ready()
            except PrismStartError as exc:
                log = self.log_text()
                self.stop()
                if "EADDRINUSE" not in log:
                    raise
                last_error = exc
                continue
            self.startup_seconds = time.monotonic() - started
            return self
        raise PrismStartError(f"no free port after {PORT_ATTEMPTS} attempts") from last_error

    def _spawn(self, binary: Path) -> None:
        command = [str(binary), *self.prism_args, "-h", LOOPBACK, "-p", str(self.port)]
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._final_log = None
        env = dict(os.environ, FORCE_COLOR="0", NO_COLOR="1")  # keep the log free of ANSI codes
        with open(self._log_path, "wb") as log_file:
            popen_kwargs: dict = {}
            if os.name == "posix":
                popen_kwargs["start_new_session"] = True  # own process group, killed as one
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                **popen_kwargs,
            )
        _running_servers.add(self)

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self.port is not None
        marker = f"{READY_MARKER} http://{LOOPBACK}:{self.port}"
        deadline = time.monotonic() + self.ready_timeout
        max_polls = int(self.ready_timeout / POLL_INTERVAL_S) + 1
        for _poll in range(max_polls):
            if marker in self.log_text() and _port_accepts(self.port):
                return
            if time.monotonic() >= deadline:
                break
            try:
                # Doubles as the poll interval and notices an early exit at once.
                code = self._process.wait(timeout=POLL_INTERVAL_S)
            except subprocess.TimeoutExpired:
                continue
            raise PrismStartError(
                f"Prism exited with code {code} before listening "
                f"({' '.join(self.prism_args)}):\n{_tail(self.log_text())}"
            )
        raise PrismStartError(
            f"Prism not listening on port {self.port} within {self.ready_timeout:.0f} s "
            f"({' '.join(self.prism_args)}):\n{_tail(self.log_text())}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        _running_servers.discard(self)
        if process is not None:
            _kill_process_group(process)
        if self._final_log is None:
            self._final_log = self.log_text()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def __enter__(self) -> "PrismServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.port is not None else "not started"
        return f"PrismServer({' '.join(self.prism_args)!r}, {where})"


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the whole group is already gone


def _kill_process_group(process: subprocess.Popen) -> None:
    if os.name != "posix":
        process.kill()
        process.wait(timeout=STOP_GRACE_S)
        return
    group = process.pid  # start_new_session made the child its own group leader
    _signal_group(group, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    # Kills a leader that ignored SIGTERM and sweeps any helper it left in the group.
    _signal_group(group, signal.SIGKILL)
    process.wait(timeout=STOP_GRACE_S)


# ---------------------------------------------------------------------------------------
# Reading Prism's verdicts


def _format_violation(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    location = ".".join(str(part) for part in item.get("location") or []) or "?"
    message = item.get("message") or item.get("code") or "violation"
    return f"{location}: {message}"


def violations(response: Any, *, include_mock_response: bool = False) -> list[str]:
    """Readable `location: message` strings for every violation Prism reported.

    Reads the `sl-violations` header (JSON list) and any problem+json body with a
    `validation` array (Prism's own 422 when the spec has no error response, and the
    500 of `proxy --errors` listing response violations). Works with requests and httpx
    responses. An empty list means the request conformed.

    In mock mode the header can also flag Prism's *own* generated answer (`response.*`,
    e.g. the Azure images example has a string `created`); that says nothing about the
    request, so it is left out unless `include_mock_response` is true.
    """
    found: list[str] = []
    header = response.headers.get("sl-violations")
    if header:
        try:
            items = json.loads(header)
        except ValueError:
            items = [header]
        for item in items if isinstance(items, list) else [items]:
            location = item.get("location") if isinstance(item, Mapping) else None
            about_response = bool(location) and location[0] == "response"
            if include_mock_response or not about_response:
                found.append(_format_violation(item))
    content_type = response.headers.get("content-type", "")
    if "problem+json" in content_type:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("validation"), list):
            found.extend(_format_violation(item) for item in body["validation"])
    # Keep the order, drop exact repeats (header and body may both list the same issue).
    return list(dict.fromkeys(found))


def assert_conforms(response: Any) -> None:
    """Prism answered 200 with no violations: the request is valid for the spec it serves."""
    found = violations(response)
    assert response.status_code == 200 and found == [], (response.status_code, found)


def assert_rejected(response: Any, field: str) -> None:
    """Prism refused the request (422) with a violation naming `field`: validation is on."""
    found = violations(response)
    assert response.status_code == 422, (response.status_code, response.text[:500])
    assert any(field in violation for violation in found), found
