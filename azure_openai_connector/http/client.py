"""The HTTP client: one pooled `requests.Session` per connection and the one request loop."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar, merge_cookies
from requests.structures import CaseInsensitiveDict

from .. import errors, process_state
from ..connection import Connection
from ..redaction import credentials, hide_secrets, hide_secrets_from_urllib3_logs, redact, redact_headers
from ..version import __version__
from .error_mapping import error_from_response, transport_error
from .messages import Exchange, OutgoingRequest, Pacer, Response, RetryPolicy, request_id_of
from .retry import parse_retry_after, retry_delay, should_retry

# The name the request log had before the HTTP layer became a package: logging configs use it.
logger = logging.getLogger("azure_openai_connector.http")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 600.0
POOL_SIZE = 64
#: The most an answer may hold once decompressed, unless the Runtime or the step says otherwise:
#: room for the largest image answers, far below what would take a worker's memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Bytes asked of the socket per read; urllib3 decompresses no more than this per read either.
READ_CHUNK = 64 * 1024
MAX_PREPARED_URLS = 256
#: Request bodies as compact UTF-8 JSON (made once: json.dumps with options builds an encoder per call).
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
USER_AGENT = f"azure-openai-connector/{__version__} python-requests/{requests.__version__}"


class _FailedAttempt(Exception):
    """One attempt's failure, with what the retry decision and the observers need."""

    status: Optional[int] = None
    retry_after: Optional[float] = None

    def __init__(self, error: errors.ConnectorError, outgoing: Optional[OutgoingRequest],
                 started: float) -> None:
        super().__init__(error)
        self.error = error
        self.outgoing = outgoing
        self.started = started


class _ErrorStatus(_FailedAttempt):
    """The service answered with an error status."""

    def __init__(self, error: errors.ApiError, outgoing: Optional[OutgoingRequest], started: float,
                 status: int, headers: Mapping[str, str], retry_after: Optional[float]) -> None:
        super().__init__(error, outgoing, started)
        self.api_error = error
        self.status = status
        self.headers = headers
        self.retry_after = retry_after


class _NoAnswer(_FailedAttempt):
    """No answer came: a timeout, a refused or dropped connection, or a request that could not be sent."""


class HttpClient:
    """One pooled `requests.Session` for one connection, shared by every step that uses it.

    `sleep`, `clock` (monotonic, for elapsed times), `wall_clock` (for HTTP dates) and
    `random_fraction` (jitter) are injected so tests never wait and can assert exact delays."""

    def __init__(
        self,
        connection: Connection,
        *,
        hooks: Any = None,
        pool_size: int = POOL_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.connection = connection
        self.hooks = hooks
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_response_bytes = max_response_bytes
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock
        self.random_fraction = random_fraction
        self.pool_size = pool_size
        self.session = _new_session(connection, pool_size)
        self._prepared_urls: Dict[str, str] = {}
        hide_secrets_from_urllib3_logs(self)
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
        max_response_bytes: Optional[int] = None,
    ) -> Response:
        """Send one logical request, retrying per `retry`; return the 2xx answer or raise.

        Each attempt must finish (answer read to its end) within connect plus read timeout, and
        the whole request within what its attempts and their waits may take: a server trickling
        a byte at a time cannot keep a step alive, as the per-read timeout alone would let it."""
        policy = retry or RetryPolicy()
        request_headers = dict(headers or {})
        if json_body is not None:
            data = COMPACT_JSON.encode(json_body).encode("utf-8")
            request_headers["Content-Type"] = "application/json"
        timeout = (self.connect_timeout, read_timeout or self.read_timeout)
        attempt_limit = timeout[0] + timeout[1]
        step_deadline = self.clock() + (policy.max_retries + 1) * attempt_limit + policy.max_retries * max(
            policy.max_delay, policy.max_retry_after)
        call = _Call(action, method, url, data, files, params, request_headers, timeout, pacer,
                     max_response_bytes or self.max_response_bytes, attempt_limit, policy)
        for attempt in range(1, policy.max_retries + 2):
            try:
                return self._attempt_with_fresh_auth_on_401(call, attempt)
            except _ErrorStatus as answered:
                failure: _FailedAttempt = answered
                retryable = should_retry(answered.status, answered.headers, answered.api_error, policy)
            except _NoAnswer as unanswered:
                failure = unanswered
                retryable = isinstance(unanswered.error, errors.ApiConnectionError)
            delay = retry_delay(policy, attempt, failure.retry_after, self.random_fraction) if retryable else None
            will_retry = (delay is not None and attempt <= policy.max_retries
                          and self.clock() + delay < step_deadline)
            error = failure.error
            self._report(failure.outgoing, failure.status, failure.started,
                         getattr(error, "request_id", None), error, will_retry, delay)
            if not will_retry:
                raise error
            if logger.isEnabledFor(logging.DEBUG):
                shown_url = failure.outgoing.url if failure.outgoing else redact(url, self.connection.secrets)
                logger.debug("retrying %s %s in %.3fs after %s (attempt %d of %d)", method, shown_url, delay,
                             failure.status or type(error).__name__, attempt, policy.max_retries + 1)
            if delay:
                self.sleep(delay)
        raise AssertionError("the last attempt returns or raises")  # pragma: no cover

    def _attempt_with_fresh_auth_on_401(self, call: _Call, attempt: int) -> Response:
        """One attempt; after a 401, when an auth plugin renews its token (revoked or expired
        early), the same attempt once more: once per logical request, outside the retry policy."""
        try:
            return self._attempt(call, attempt)
        except _ErrorStatus as answered:
            if answered.status != 401 or call.auth_refreshed or not self._refresh_auth(call.sent_auth):
                raise
            call.auth_refreshed = True
            self._report(answered.outgoing, answered.status, answered.started,
                         answered.api_error.request_id, answered.error, True, 0.0)
            logger.debug("auth token renewed after a 401; sending %s once more", call.method)
            return self._attempt(call, attempt)

    def _attempt(self, call: _Call, attempt: int) -> Response:
        """One attempt: the 2xx Response, or _ErrorStatus / _NoAnswer carrying the typed error."""
        auth = call.sent_auth = self._auth_headers()
        secrets = self.connection.secrets + credentials(auth.values())
        headers = {**call.headers, **auth}
        outgoing = self._announce(call.action, call.method, call.url, attempt, headers, secrets)
        pacer = call.pacer
        if pacer is not None:
            pacer.before_attempt()
        started = self.clock()
        status: Optional[int] = None
        retry_after: Optional[float] = None
        try:
            raw = self._send(call.method, call.url, data=call.data, files=call.files, params=call.params,
                             headers=headers, timeout=call.timeout)
            content = None
            try:
                content = self._read_body(raw, call, started, attempt)
            finally:
                if content is None:
                    raw.close()  # a body left unread: its connection cannot serve another request
                else:
                    raw.raw.release_conn()
            status = raw.status_code
            if status < 300:
                result = Response(status=status, headers=raw.headers, content=content,
                                  request_id=request_id_of(raw.headers), attempts=attempt,
                                  elapsed=self.clock() - started, url=call.url)
                self._report(outgoing, status, started, result.request_id, None, False, None)
                return result
            retry_after = parse_retry_after(raw.headers, wall_clock=self.wall_clock)
            error = error_from_response(status, raw.headers, content, attempts=attempt,
                                        secrets=secrets, wall_clock=self.wall_clock)
            raise _ErrorStatus(error, outgoing, started, status, raw.headers, retry_after)
        except requests.RequestException as exc:
            raise _NoAnswer(transport_error(exc, attempt, secrets), outgoing, started) from None
        except errors.ConnectorError as refused:  # too large, or past the attempt's deadline
            raise _NoAnswer(hide_secrets(refused, secrets), outgoing, started) from None
        finally:
            if pacer is not None:
                pacer.after_attempt(status, retry_after, None if status is None else raw.headers)

    def _read_body(self, raw: requests.Response, call: "_Call", started: float, attempt: int) -> bytes:
        """The whole body, decompressed, read a chunk at a time: refused once it passes the
        call's size limit (counted after decompression, so a gzip bomb stops early) or once the
        attempt's total time is up."""
        limit = call.max_response_bytes
        declared = raw.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and "content-encoding" not in raw.headers:
            raise self._too_large(raw, limit, attempt)
        chunks = []
        size = 0
        stream = raw.raw
        for _ in range(limit + 2):  # each read brings at least one byte or ends the body
            if self.clock() - started > call.attempt_limit:
                raise errors.ApiTimeoutError(
                    f"The service did not finish its answer within {call.attempt_limit:g} s", attempts=attempt)
            try:
                chunk = stream.read1(READ_CHUNK, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError as exc:
                raise requests.exceptions.ReadTimeout(exc) from None
            except urllib3.exceptions.DecodeError as exc:
                raise requests.exceptions.ContentDecodingError(exc) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise requests.exceptions.ChunkedEncodingError(exc) from None
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise self._too_large(raw, limit, attempt)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _too_large(raw: requests.Response, limit: int, attempt: int) -> errors.InvalidResponseError:
        return errors.InvalidResponseError(
            f"The service's answer is larger than the limit of {limit} bytes", status=raw.status_code,
            code="response_too_large", request_id=request_id_of(raw.headers), attempts=attempt)

    def _send(self, method: str, url: str, *, data: Any, files: Any, params: Any,
              headers: Dict[str, str], timeout: Tuple[float, float]) -> requests.Response:
        """`self.session.request(..., allow_redirects=False)`, doing only the per-request part of
        its work when nothing else can differ: the same prepared request, cookies, proxies, TLS
        settings and errors, handed to the session's adapter as `Session.send` would.

        `Session.request` re-parses and re-quotes the URL and checks it for credentials (a pure
        function of it, cached here) and merges the session's params, proxies and headers through
        generic helpers whose runtime Protocol checks are slow; with trust_env off there is nothing
        else to merge. `Session.send` then dispatches response hooks (the session has none), reads
        cookies from every answer (only an answer that sets one has any) and looks for a redirect
        it will not follow. Files, params, session auth, hooks or trust_env take the ordinary path."""
        session = self.session
        if (files is not None or params or session.params or session.auth is not None or session.trust_env
                or any(session.hooks.values())):
            return session.request(method, url, data=data, files=files, params=params, headers=headers,
                                   timeout=timeout, allow_redirects=False)
        known = self._prepared_urls.get(url)
        if known is None:
            probe = requests.PreparedRequest()
            probe.prepare_url(url, None)
            probe.prepare_headers({})
            probe.prepare_auth(None, probe.url)  # user:password in the URL becomes Basic auth
            known = (probe.url, "Authorization" in probe.headers)
            if len(self._prepared_urls) >= MAX_PREPARED_URLS:
                self._prepared_urls.clear()
            self._prepared_urls[url] = known
        prepared_url, has_url_credentials = known
        merged = CaseInsensitiveDict(session.headers)
        merged.update(headers)
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.url = prepared_url
        prepared.prepare_headers({name: value for name, value in merged.items() if value is not None})
        if session.cookies:
            prepared.prepare_cookies(merge_cookies(RequestsCookieJar(), session.cookies))
        prepared.prepare_body(data or {}, None)
        if has_url_credentials:
            prepared.prepare_auth(None, prepared_url)
        response = session.get_adapter(prepared_url).send(
            prepared, stream=session.stream, timeout=timeout, verify=session.verify, cert=session.cert,
            proxies=session.proxies)
        if "set-cookie" in response.headers:
            extract_cookies_to_jar(session.cookies, prepared, response.raw)
        return response

    def _refresh_auth(self, rejected: Dict[str, str]) -> bool:
        """Ask the auth plugins for a fresh credential after a 401; True when one was renewed."""
        if self.hooks is None:
            from ..entra import renew_entra_token

            return bool(renew_entra_token(self.connection, rejected))
        return bool(self.hooks.request_auth_refresh(connection=self.connection, rejected_headers=rejected))

    def _auth_headers(self) -> Dict[str, str]:
        if self.hooks is None:
            if self.connection.uses_api_key:
                return self.connection.api_key_headers()
            from ..entra import entra_auth_headers  # a client without plugins still signs in keyless

            return dict(entra_auth_headers(self.connection) or {})
        for impl in reversed(self.hooks.request_auth_headers.get_hookimpls()):  # pluggy's order
            supplied = _call_plugin(impl, "request_auth_headers", connection=self.connection)
            if supplied is None:
                continue
            if isinstance(supplied, Mapping) and not supplied:
                break  # an empty answer has always meant "use the key"
            if not (isinstance(supplied, Mapping) and all(
                    isinstance(name, str) and isinstance(value, str) for name, value in supplied.items())):
                raise errors.ConnectorError(
                    f"The extension plugin {impl.plugin_name!r} returned auth headers that are not "
                    f"a mapping of strings to strings (got {type(supplied).__name__})")
            return dict(supplied)
        return self.connection.api_key_headers()

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
            for impl in reversed(self.hooks.http_request_started.get_hookimpls()):
                _call_plugin(impl, "http_request_started", request=outgoing)
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
        exchange = Exchange(request=outgoing, status=status, elapsed=elapsed, request_id=request_id,
                            error=error, will_retry=will_retry, retry_delay=delay if will_retry else None)
        for impl in reversed(self.hooks.http_request_finished.get_hookimpls()):
            _call_plugin(impl, "http_request_finished", exchange=exchange)


class _Call:
    """One logical request, as every attempt of it sends it."""

    __slots__ = ("action", "method", "url", "data", "files", "params", "headers", "timeout", "pacer",
                 "auth_refreshed", "sent_auth", "max_response_bytes", "attempt_limit", "policy")

    def __init__(self, action: Optional[str], method: str, url: str, data: Any, files: Any,
                 params: Optional[Mapping[str, Any]], headers: Dict[str, str],
                 timeout: Tuple[float, float], pacer: Optional[Pacer], max_response_bytes: int,
                 attempt_limit: float, policy: RetryPolicy) -> None:
        self.action, self.method, self.url = action, method, url
        self.data, self.files, self.params, self.headers = data, files, params, headers
        self.timeout, self.pacer = timeout, pacer
        self.auth_refreshed = False
        self.sent_auth: Dict[str, str] = {}
        self.max_response_bytes, self.attempt_limit, self.policy = max_response_bytes, attempt_limit, policy


def _call_plugin(impl: Any, hook_name: str, **arguments: Any) -> Any:
    """One extension plugin's hook implementation, called on its own so that a failure names it:
    a broken plugin fails the step with a ConnectorError, never a bare exception of its own (a
    ConnectorError it raises on purpose passes through as it is)."""
    try:
        return impl.function(**{name: arguments[name] for name in impl.argnames})
    except errors.ConnectorError:
        raise  # a typed refusal on purpose (a missing extra, a token that could not be had)
    except Exception as exc:  # noqa: BLE001 - whatever a third-party plugin raises
        raise errors.ConnectorError(
            f"The extension plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}") from None


class _PoolAdapter(HTTPAdapter):
    """requests' HTTPAdapter, remembering the connection pool of each origin and TLS setting.

    For every request, requests parses the URL, stats the CA bundle path (a directory or a file?)
    and urllib3 normalises a pool key, all to find the same pool again: pure functions of the
    origin and the TLS settings. A remembered pool is used while it is open (a closed one is looked
    up afresh); no more are remembered than the pool manager keeps, a new pool manager (a grown
    pool) starts afresh, closing the adapter closes them too, and proxied requests take requests'
    own path."""

    _pools: Dict[Tuple[str, Any, Any], Any]

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Optional[Mapping[str, str]] = None, cert: Any = None) -> Any:
        url = request.url or ""
        if proxies:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        path_starts = url.find("/", url.find("//") + 2)
        key = (url if path_starts < 0 else url[:path_starts], verify, cert)
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:  # not yet looked up, or closed since
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if len(self._pools) >= self._pool_connections:
                self._pools.clear()
            self._pools[key] = pool
        return pool

    def init_poolmanager(self, *args: Any, **options: Any) -> None:
        """A new pool manager (a grown pool): forget the pools of the old one."""
        self._pools = {}
        super().init_poolmanager(*args, **options)

    def close(self) -> None:
        remembered, self._pools = self._pools, {}
        for pool in remembered.values():
            pool.close()
        super().close()


def _new_session(connection: Connection, pool_size: int) -> requests.Session:
    session = requests.Session()
    # Proxy and CA settings are read from the environment once, here, instead of on every
    # request (a quarter of a default Session's per-call cost); no netrc credentials either.
    session.trust_env = False
    # Bodies are read by the client itself, a chunk at a time, under a size and time limit.
    session.stream = True
    session.proxies.update(requests.utils.get_environ_proxies(connection.base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    adapter = _PoolAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json",
                            **connection.default_headers(), **connection.gateway_headers()})
    return session
