"""Run one workflow step: validate the connection and inputs, then dispatch to the action handler.

A Runtime owns one HTTP client per distinct connection, so every step that shares a connection
shares its session and connection pool. Steps keep no other state: they are safe in threads.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import actions, process_state
from .connection import (
    ALLOWED_HOSTS_ENV,
    ENDPOINT_POLICIES,
    ENDPOINT_POLICY_ENV,
    Connection,
    connection_from_values,
    endpoint_policy_problem,
    readable_connection_problems,
)
from .errors import ConnectorError, InputValidationError
from .http import HttpClient
from .manifest import load_manifest
from .redaction import hide_secrets, redact

MAX_CACHED_CLIENTS = 32
MAX_CACHED_CONNECTIONS = 256
#: A connection given as "conn:NAME" is resolved at run time by the `resolve_connection` hook.
CONNECTION_REFERENCE_PREFIX = "conn:"
MAX_REFERENCE_NAME_LENGTH = 256


class Runtime:
    """Validates and dispatches steps; `client_options` go to every HttpClient it creates
    (timeouts, pool size, and an injected `sleep`/`clock` in tests), and `pacer_factory` makes the
    shared pacer of each batch step (default: a real-time AdaptivePacer)."""

    def __init__(self, *, hooks: Any = None, pacer_factory: Optional[Callable[[int], Any]] = None,
                 endpoint_policy: Optional[str] = None, allowed_hosts: Optional[Sequence[str]] = None,
                 **client_options: Any) -> None:
        # "public" (for hosts whose tenants type endpoints) or "open" (the default, for one user).
        policy = endpoint_policy or os.environ.get(ENDPOINT_POLICY_ENV, "").strip().lower() or "open"
        if policy not in ENDPOINT_POLICIES:
            raise ValueError(f"endpoint_policy must be one of {ENDPOINT_POLICIES}, not {policy!r}")
        self.endpoint_policy = policy
        self.allowed_hosts = tuple(allowed_hosts if allowed_hosts is not None
                                   else os.environ.get(ALLOWED_HOSTS_ENV, "").split(","))
        self.hooks = hooks
        self.pacer_factory = pacer_factory
        self.client_options = client_options
        self._clients: "OrderedDict[tuple, HttpClient]" = OrderedDict()
        self._lock = threading.Lock()
        # Connection values already validated, and their Connection (immutable): a worker sends the
        # same connection with every step, and checking it again cost about as much as the inputs.
        self._connections: Dict[tuple, Connection] = {}
        process_state.renew_after_fork(self)

    def after_fork_in_child(self) -> None:
        """Forget (never close: they are the parent's) the inherited clients; renew the lock."""
        self._lock = threading.Lock()
        self._clients = OrderedDict()

    def run(self, action: str, connection: Union[Mapping[str, Any], str, None],
            inputs: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """Validate everything first (nothing is sent for invalid input), then run the handler.
        `connection` is the values, or a "conn:NAME" reference resolved first."""
        spec = load_manifest().action(action)
        problems: List[Dict[str, str]] = []
        conn: Optional[Connection] = None
        values: Dict[str, Any] = {}
        refused = False
        try:
            connection = self.dereferenced(connection)
            conn = self.connection(connection)
        except InputValidationError as exc:
            problems.extend(exc.errors)
            refused = True
        try:
            values = spec.inputs.validated(inputs)
        except InputValidationError as exc:
            problems.extend(exc.errors)
            refused = True
        handler = actions.handler(action)
        if not refused and conn is not None:
            problems.extend(handler.check(values, conn, spec) if hasattr(handler, "check") else [])
        if refused or problems or conn is None:
            # A refusal is a refusal even if it listed nothing: never run the handler after one.
            problems = _without_key(problems, connection) or [
                {"path": "", "message": "was refused without a reason"}]
            raise InputValidationError(problems, subject=_subject_of(problems))
        step = actions.Step(action=spec, connection=conn, client=self.client(conn),
                            pacer_factory=self.pacer_factory, endpoint_policy=self.endpoint_policy)
        # Everything that leaves a step passes here: its result, or its error with every field.
        try:
            result = handler.run(step, values)
        except ConnectorError as error:
            raise hide_secrets(error, conn.secrets) from None
        return hide_secrets(result, conn.secrets)

    def dereferenced(self, connection: Any) -> Any:
        """The connection values a "conn:NAME" reference stands for, from the `resolve_connection`
        hook (so a queued task need not carry the key); any other value as it is."""
        if not isinstance(connection, str):
            return connection
        name = connection[len(CONNECTION_REFERENCE_PREFIX):]
        if not connection.startswith(CONNECTION_REFERENCE_PREFIX):
            problem = 'must be an object, or a reference "conn:NAME" to one'
        elif not name or len(name) > MAX_REFERENCE_NAME_LENGTH or not name.isprintable() or " " in name:
            problem = (f"a reference names its connection after {CONNECTION_REFERENCE_PREFIX!r} in 1 to "
                       f"{MAX_REFERENCE_NAME_LENGTH} printable characters without spaces")
        else:
            resolve = getattr(self.hooks, "resolve_connection", None)
            resolved = resolve(name=name) if resolve is not None else None
            if isinstance(resolved, Mapping):
                return resolved
            problem = (f"no plugin resolved the connection reference {connection!r}" if resolved is None
                       else f"the connection reference {connection!r} resolved to a "
                            f"{type(resolved).__name__}, not an object")
        raise InputValidationError([{"path": "connection", "message": problem}], subject="connection")

    def connection(self, values: Optional[Mapping[str, Any]]) -> Connection:
        """A validated Connection, or InputValidationError with `connection/...` paths."""
        form = load_manifest().connection
        if values is not None and not isinstance(values, Mapping):
            raise InputValidationError([{"path": "connection", "message": "must be an object"}],
                                       subject="connection")
        key = _connection_key(values)
        known = self._connections.get(key) if key is not None else None
        if known is not None:
            return known
        try:
            completed = form.validated(values, subject="connection", prefix="connection")
        except InputValidationError as refused:
            raise InputValidationError(readable_connection_problems(refused.errors, values),
                                       subject="connection") from None
        connection = connection_from_values(completed)
        refusal = endpoint_policy_problem(connection.base_url, self.endpoint_policy, self.allowed_hosts)
        if refusal:
            raise InputValidationError([{"path": "connection/endpoint", "message": refusal}], subject="connection")
        if key is not None:
            if len(self._connections) >= MAX_CACHED_CONNECTIONS:
                self._connections.clear()
            self._connections[key] = connection
        return connection

    def client(self, connection: Connection) -> HttpClient:
        """The shared client for this connection (created on first use, least recently used evicted)."""
        key = connection.fingerprint
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
            client = HttpClient(connection, hooks=self.hooks, **self.client_options)
            self._clients[key] = client
            if len(self._clients) > MAX_CACHED_CLIENTS:
                # Closing now is safe for a step still using it on another thread: the pools close
                # their idle sockets at once and each busy one when it comes back.
                self._clients.popitem(last=False)[1].close()
            return client

    def close(self) -> None:
        """Close every cached session (for tests and orderly shutdown)."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _connection_key(values: Optional[Mapping[str, Any]]) -> Optional[tuple]:
    """The connection values as a dict key, each with its type (True and 1 must not share a
    verdict); None when a value is not hashable (never valid anyway: the fields are scalars)."""
    if values is None:
        return ()
    key = tuple((name, type(value), value) for name, value in values.items())
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _subject_of(problems: List[Dict[str, str]]) -> str:
    """What the refused values were: the connection, the inputs, or both."""
    about_connection = {problem["path"].split("/", 1)[0] == "connection" for problem in problems}
    if about_connection == {True}:
        return "connection"
    return "connection and inputs" if about_connection == {True, False} else "inputs"


def _without_key(problems: List[Dict[str, str]],
                 connection: Optional[Mapping[str, Any]]) -> List[Dict[str, str]]:
    """The problems with the connection's secrets hidden (key, client secret, gateway values): one
    pasted into an input by mistake must not come back in the error (messages quote invalid values)."""
    if not isinstance(connection, Mapping):
        return problems
    values = [connection.get("api_key"), connection.get("client_secret")]
    for name in ("gateway_headers", "gateway_query"):
        extra = connection.get(name)
        values += list(extra.values()) if isinstance(extra, Mapping) else []
    secrets = tuple(form for value in values if isinstance(value, str) for form in (value, value.strip()))
    if not secrets:
        return problems
    return [{**problem, "path": redact(problem["path"], secrets), "message": redact(problem["message"], secrets)}
            for problem in problems]

