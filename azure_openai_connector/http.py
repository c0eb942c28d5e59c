"""The one request loop: a pooled session per connection, timeouts, retries, redaction, typed errors.

Retry policy (see api-notes.md): retry 408, 409, 429 (not insufficient_quota), 5xx, timeouts and
dropped connections; `x-should-retry` overrides; wait `retry-after-ms`, then `retry-after`
(seconds or an HTTP date), and give up at once when that wait is above the cap; otherwise
exponential backoff with jitter. Never retry other 4xx or content-filter refusals.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Protocol, Tuple

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar, merge_cookies
from requests.hooks import default_hooks
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict

from . import errors, process_state
from .connection import Connection, transport_failure_message

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
POOL_SIZE = 64
MAX_PREPARED_URLS = 256
ERROR_TEXT_LIMIT = 1000
REDACTED = "***"

RETRYABLE_STATUSES = frozenset({408, 409, 429})
SECRET_HEADERS = frozenset({"authorization", "api-key", "proxy-authorization", "cookie",
                            "set-cookie", "x-api-key", "ocp-apim-subscription-key"})
USER_AGENT = "azure-openai-connector/0.1.0 python-requests/" + requests.__version__


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; the defaults follow openai-python."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    max_retry_after: float = MAX_RETRY_AFTER
    exponential: bool = True
    jitter: float = 0.25
    retry_all_errors: bool = False

    def backoff(self, attempt: int, random_fraction: float) -> float:
        """The wait before retry number `attempt` (1-based) when the server gave no hint."""
        base = self.initial_delay * (2 ** (attempt - 1) if self.exponential else 1)
        return min(base, self.max_delay) * (1 - self.jitter * random_fraction)


NO_RETRIES = RetryPolicy(max_retries=0)


class Pacer(Protocol):
    """Shared pacing for a batch: may block before an attempt, learns from each answer."""

    def before_attempt(self) -> None: ...

    def after_attempt(self, status: Optional[int], retry_after: Optional[float]) -> None: ...


@dataclass(frozen=True)
class OutgoingRequest:
    """What observers see before an attempt (headers already redacted)."""

    action: Optional[str]
    method: str
    url: str
    attempt: int
    headers: Dict[str, str]


@dataclass(frozen=True)
class Exchange:
    """What observers see after an attempt."""

    request: OutgoingRequest
    status: Optional[int]
    elapsed: float
    request_id: Optional[str]
    error: Optional[errors.ConnectorError]
    will_retry: bool
    retry_delay: Optional[float]


@dataclass
class Response:
    """A successful answer, read whole."""

    status: int
    headers: CaseInsensitiveDict
    content: bytes
    request_id: Optional[str]
    attempts: int
    elapsed: float
    url: str = field(repr=False, default="")

    def json(self) -> Any:
        """The body as JSON, or InvalidResponseError naming the request."""
        try:
            return json.loads(self.content)
        except ValueError:
            raise errors.InvalidResponseError(
                "The service answered with a body that is not valid JSON",
                status=self.status, code="invalid_json", request_id=self.request_id,
                attempts=self.attempts) from None


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text`, also where it appears escaped as by repr() (exception
    texts quote values that way, so "key\\n" would otherwise show the key)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            if secret in text:
                text = text.replace(secret, REDACTED)
            escaped = repr(secret)[1:-1]
            if escaped != secret and escaped in text:
                text = text.replace(escaped, REDACTED)
    return text


class _UrllibRedactingFilter(logging.Filter):
    """urllib3 logs every request line at DEBUG, URL and query included, where a raw request
    may carry anything (a key in `query_params`, say): hide the secrets of every live client."""

    def __init__(self) -> None:
        super().__init__()
        self._clients: "weakref.WeakSet[HttpClient]" = weakref.WeakSet()
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def add(self, client: "HttpClient") -> None:
        with self._lock:
            self._clients.add(client)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = tuple(secret for client in list(self._clients) for secret in client.connection.secrets)
        if secrets:
            message = record.getMessage()
            hidden = redact(message, secrets)
            if hidden != message:
                record.msg, record.args = hidden, None
        return True


_urllib_filter = _UrllibRedactingFilter()
process_state.renew_after_fork(_urllib_filter)
logging.getLogger("urllib3.connectionpool").addFilter(_urllib_filter)


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> Dict[str, str]:
    """A copy of `headers` safe to log: auth headers and any value holding a secret hidden."""
    secrets = tuple(secrets)
    return {name: REDACTED if name.lower() in SECRET_HEADERS else redact(str(value), secrets)
            for name, value in headers.items()}


def parse_retry_after(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    """The server's wait hint in seconds: `retry-after-ms`, then `retry-after` (seconds or date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
            if value >= 0:
                return value
        except ValueError:
            pass
    seconds = headers.get("retry-after")
    if not seconds:
        return None
    try:
        value = float(seconds)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(seconds)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def error_from_response(status: int, headers: Mapping[str, str], content: bytes, *,
                        attempts: int, secrets: Iterable[str] = ()) -> errors.ApiError:
    """The typed error for an error status, with code, message and request ID from the body."""
    secrets = tuple(secrets)
    request_id = headers.get("x-request-id") or headers.get("apim-request-id")
    body: Any = None
    try:
        body = json.loads(content) if content else None
    except ValueError:
        pass
    payload = body.get("error") if isinstance(body, dict) else None
    if isinstance(payload, dict):
        message = str(payload.get("message") or f"HTTP {status}")
        code = payload.get("code")
        error_type = payload.get("type")
        param = payload.get("param")
        inner = payload.get("innererror") or payload.get("inner_error") or {}
    else:
        text = content[:ERROR_TEXT_LIMIT].decode("utf-8", "replace").strip()
        message = text or f"HTTP {status}"
        code = error_type = param = None
        inner = {}
    code = None if code is None else str(code)
    message = redact(message[:ERROR_TEXT_LIMIT], secrets)
    details: Dict[str, Any] = {}
    if isinstance(inner, dict):
        filter_results = inner.get("content_filter_result") or inner.get("content_filter_results")
        if filter_results:
            details["content_filter_results"] = filter_results
        if inner.get("revised_prompt"):
            details["revised_prompt"] = inner["revised_prompt"]
    common = dict(status=status, code=code, request_id=request_id,
                  param=None if param is None else str(param),
                  error_type=None if error_type is None else str(error_type),
                  details=details, attempts=attempts)
    is_content_filter = code == "content_filter" or (
        isinstance(inner, dict) and inner.get("code") == "ResponsibleAIPolicyViolation")
    if is_content_filter:
        return errors.ContentFilterError(message, **common)
    if status == 429 and "insufficient_quota" in (code, error_type):
        return errors.QuotaExceededError(message, **common)
    if status == 429:
        return errors.RateLimitError(message, retry_after=parse_retry_after(headers), **common)
    error_class = {400: errors.BadRequestError, 401: errors.AuthenticationError,
                   403: errors.PermissionDeniedError, 404: errors.NotFoundError,
                   422: errors.BadRequestError}.get(status)
    if error_class is None:
        if 300 <= status < 400:
            location = headers.get("location", "")
            return errors.RedirectNotFollowedError(
                f"The service redirected (HTTP {status}) to {redact(location, secrets)[:200]!r}; "
                "redirects are never followed, so credentials stay on the configured host",
                **common)
        error_class = errors.ServerError if status >= 500 else errors.ApiError
    return error_class(message, **common)


def should_retry(status: int, headers: Mapping[str, str], error: Optional[errors.ApiError],
                 policy: RetryPolicy) -> bool:
    """Whether an error status is worth another attempt (before looking at the wait)."""
    if policy.retry_all_errors and status >= 400:
        return True
    verdict = headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    if isinstance(error, (errors.QuotaExceededError, errors.ContentFilterError)):
        return False
    return status in RETRYABLE_STATUSES or status >= 500


class HttpClient:
    """One pooled `requests.Session` for one connection, shared by every step that uses it."""

    def __init__(
        self,
        connection: Connection,
        *,
        hooks: Any = None,
        pool_size: int = POOL_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.connection = connection
        self.hooks = hooks
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.sleep = sleep
        self.clock = clock
        self.random_fraction = random_fraction
        self.pool_size = pool_size
        self.session = _new_session(connection, pool_size)
        self._prepared_urls: Dict[str, str] = {}
        _urllib_filter.add(self)
        process_state.renew_after_fork(self)

    def after_fork_in_child(self) -> None:
        """A new session for the child: the pooled sockets are the parent's (left open for it)."""
        self.session = _new_session(self.connection, self.pool_size)

    def __repr__(self) -> str:
        return f"HttpClient({self.connection!r})"

    def close(self) -> None:
        """Close every pooled connection now. (urllib3 2's PoolManager.clear(), which
        Session.close() calls, only forgets its pools: their sockets stayed open for as long as
        anything, such as a kept error's traceback, still referred to a response.)"""
        for adapter in {id(a): a for a in self.session.adapters.values()}.values():
            pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
            for key in list(pools.keys()) if pools is not None else ():
                pool = pools.get(key)
                if pool is not None:
                    pool.close()  # idle connections now; busy ones when they come back
        self.session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: Any = None,
        files: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        read_timeout: Optional[float] = None,
        retry: Optional[RetryPolicy] = None,
        action: Optional[str] = None,
        pacer: Optional[Pacer] = None,
    ) -> Response:
        """Send one logical request, retrying per `retry`; return the 2xx answer or raise."""
        policy = retry or RetryPolicy()
        request_headers = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            request_headers["Content-Type"] = "application/json"
        timeout = (self.connect_timeout, read_timeout or self.read_timeout)
        attempt = 0
        while True:
            attempt += 1
            auth = self._auth_headers()
            secrets = self.connection.secrets + _credentials(auth.values())
            outgoing = self._announce(action, method, url, attempt, {**request_headers, **auth}, secrets)
            if pacer is not None:
                pacer.before_attempt()
            started = self.clock()
            status: Optional[int] = None
            retry_after: Optional[float] = None
            try:
                try:
                    raw = self._send(method, url, data=data, files=files, params=params,
                                     headers={**request_headers, **auth}, timeout=timeout)
                except requests.RequestException as exc:
                    error: errors.ConnectorError = _transport_error(exc, attempt, secrets)
                    retryable = isinstance(error, errors.ApiConnectionError)
                else:
                    status = raw.status_code
                    if status < 300:
                        result = Response(status=status, headers=raw.headers, content=raw.content,
                                          request_id=raw.headers.get("x-request-id")
                                          or raw.headers.get("apim-request-id"),
                                          attempts=attempt, elapsed=self.clock() - started, url=url)
                        self._report(outgoing, status, started, result.request_id, None, False, None)
                        return result
                    error = error_from_response(status, raw.headers, raw.content,
                                                attempts=attempt, secrets=secrets)
                    retryable = should_retry(status, raw.headers, error, policy)
                    retry_after = parse_retry_after(raw.headers)
            finally:
                if pacer is not None:
                    pacer.after_attempt(status, retry_after)
            delay = self._retry_delay(policy, attempt, retry_after) if retryable else None
            will_retry = delay is not None and attempt <= policy.max_retries
            request_id = getattr(error, "request_id", None)
            self._report(outgoing, status, started, request_id, error, will_retry, delay)
            if not will_retry:
                raise error
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("retrying %s %s in %.3fs after %s (attempt %d of %d)", method,
                             redact(url, secrets), delay, status or type(error).__name__,
                             attempt, policy.max_retries + 1)
            if delay:
                self.sleep(delay)

    def _send(self, method: str, url: str, *, data: Any, files: Any, params: Any,
              headers: Dict[str, str], timeout: Tuple[float, float]) -> requests.Response:
        """`self.session.request(..., allow_redirects=False)`, doing only the per-request part of
        its work when nothing else can differ: the same prepared request, cookies, hooks, proxies,
        TLS settings and errors, at about three quarters of requests' own CPU per call.

        `Session.request` re-parses and re-quotes the URL (a pure function of it, cached here) and
        merges the session's params, proxies and headers through generic helpers whose runtime
        Protocol checks are slow; with trust_env off there is nothing else to merge. Files, params,
        session auth or trust_env take the ordinary path."""
        session = self.session
        if files is not None or params or session.params or session.auth is not None or session.trust_env:
            return session.request(method, url, data=data, files=files, params=params, headers=headers,
                                   timeout=timeout, allow_redirects=False)
        prepared_url = self._prepared_urls.get(url)
        if prepared_url is None:
            probe = requests.PreparedRequest()
            probe.prepare_url(url, None)
            prepared_url = probe.url
            if len(self._prepared_urls) >= MAX_PREPARED_URLS:
                self._prepared_urls.clear()
            self._prepared_urls[url] = prepared_url
        merged = CaseInsensitiveDict(session.headers)
        merged.update(headers)
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.url = prepared_url
        prepared.prepare_headers({name: value for name, value in merged.items() if value is not None})
        prepared.prepare_cookies(merge_cookies(RequestsCookieJar(), session.cookies))
        prepared.prepare_body(data or {}, None)
        prepared.prepare_auth(None, prepared_url)
        prepared.prepare_hooks(merge_hooks(default_hooks(), session.hooks))
        return session.send(prepared, timeout=timeout, allow_redirects=False, proxies=session.proxies,
                            stream=session.stream, verify=session.verify, cert=session.cert)

    def _retry_delay(self, policy: RetryPolicy, attempt: int, retry_after: Optional[float]) -> Optional[float]:
        if retry_after is not None:
            # A server that asks for a longer wait than we allow will not be ready sooner.
            return retry_after if retry_after <= policy.max_retry_after else None
        return policy.backoff(attempt, self.random_fraction())

    def _auth_headers(self) -> Dict[str, str]:
        if self.hooks is None:
            return self.connection.api_key_headers()
        supplied = self.hooks.request_auth_headers(connection=self.connection)
        return dict(supplied) if supplied else self.connection.api_key_headers()

    def _announce(self, action: Optional[str], method: str, url: str, attempt: int,
                  headers: Dict[str, str], secrets: Tuple[str, ...]) -> Optional[OutgoingRequest]:
        # An observer of either hook needs the (redacted) request: one implementing only
        # http_request_finished must be called too.
        observed = self.hooks is not None and bool(self.hooks.http_request_started.get_hookimpls()
                                                   or self.hooks.http_request_finished.get_hookimpls())
        debug = logger.isEnabledFor(logging.DEBUG)
        if not (observed or debug):
            return None
        merged = {**self.session.headers, **headers}
        outgoing = OutgoingRequest(action=action, method=method, url=redact(url, secrets),
                                   attempt=attempt, headers=redact_headers(merged, secrets))
        if debug:
            logger.debug("%s %s attempt %d headers=%s", method, outgoing.url, attempt, outgoing.headers)
        if observed:
            self.hooks.http_request_started(request=outgoing)
        return outgoing

    def _report(self, outgoing: Optional[OutgoingRequest], status: Optional[int], started: float,
                request_id: Optional[str], error: Optional[errors.ConnectorError],
                will_retry: bool, delay: Optional[float]) -> None:
        elapsed = self.clock() - started
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("answered %s in %.1f ms, request id %s%s", status or "no status",
                         elapsed * 1000, request_id, f", error: {error}" if error else "")
        # With DEBUG logging on, `outgoing` exists even for a client without hooks.
        if outgoing is None or self.hooks is None or not self.hooks.http_request_finished.get_hookimpls():
            return
        self.hooks.http_request_finished(exchange=Exchange(
            request=outgoing, status=status, elapsed=elapsed, request_id=request_id,
            error=error, will_retry=will_retry, retry_delay=delay if will_retry else None))


def _credentials(values: Iterable[str]) -> Tuple[str, ...]:
    """Auth header values and the credential inside each ("Bearer <token>" -> also "<token>"): a
    server echoing a token quotes it without its scheme."""
    found = []
    for value in values:
        found.append(value)
        token = value.partition(" ")[2].strip()
        if token:
            found.append(token)
    return tuple(found)


def _new_session(connection: Connection, pool_size: int) -> requests.Session:
    session = requests.Session()
    # Proxy and CA settings are read from the environment once, here, instead of on every
    # request (a quarter of a default Session's per-call cost); no netrc credentials either.
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(connection.base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json",
                            **connection.default_headers()})
    return session


def _transport_error(exc: requests.RequestException, attempts: int,
                     secrets: Tuple[str, ...]) -> errors.ConnectorError:
    detail = redact(f"{type(exc).__name__}: {exc}", secrets)[:ERROR_TEXT_LIMIT]
    if isinstance(exc, requests.Timeout):
        return errors.ApiTimeoutError(f"The service did not answer in time ({detail})", attempts=attempts)
    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)):
        url = exc.request.url if getattr(exc, "request", None) is not None else None
        return errors.ApiConnectionError(redact(transport_failure_message(exc, url), secrets)[:ERROR_TEXT_LIMIT],
                                         attempts=attempts)
    return errors.ConnectorError(f"The request could not be sent ({detail})")
