"""Run one workflow step: validate the connection and inputs, then dispatch to the action handler.

A Runtime owns one HTTP client per distinct connection, so every step that shares a connection
shares its session and connection pool. Steps keep no other state: they are safe in threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import actions, process_state
from .process_state import ProcessSingleton
from .connection import Connection, connection_from_values, readable_connection_problems
from .errors import InputValidationError
from .http import HttpClient, redact
from .manifest import load_manifest

MAX_CACHED_CLIENTS = 32
MAX_CACHED_CONNECTIONS = 256


class Runtime:
    """Validates and dispatches steps; `client_options` go to every HttpClient it creates
    (timeouts, pool size, and an injected `sleep`/`clock` in tests), and `pacer_factory` makes the
    shared pacer of each batch step (default: a real-time AdaptivePacer)."""

    def __init__(self, *, hooks: Any = None, pacer_factory: Optional[Callable[[int], Any]] = None,
                 **client_options: Any) -> None:
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

    def run(self, action: str, connection: Optional[Mapping[str, Any]],
            inputs: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """Validate everything first (nothing is sent for invalid input), then run the handler."""
        spec = load_manifest().action(action)
        problems: List[Dict[str, str]] = []
        conn: Optional[Connection] = None
        values: Dict[str, Any] = {}
        try:
            conn = self.connection(connection)
        except InputValidationError as exc:
            problems.extend(exc.errors)
        try:
            values = spec.inputs.validated(inputs)
        except InputValidationError as exc:
            problems.extend(exc.errors)
        handler = actions.handler(action)
        if not problems and conn is not None:
            problems.extend(handler.check(values, conn, spec) if hasattr(handler, "check") else [])
        if problems:
            raise InputValidationError(_without_key(problems, connection))
        step = actions.Step(action=spec, connection=conn, client=self.client(conn),
                            pacer_factory=self.pacer_factory)
        return handler.run(step, values)

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
                # Not closed: a step on another thread may still be using it; its pool goes with it.
                self._clients.popitem(last=False)
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


def _without_key(problems: List[Dict[str, str]],
                 connection: Optional[Mapping[str, Any]]) -> List[Dict[str, str]]:
    """The problems with the connection's key hidden: a key pasted into an input by mistake must
    not come back in the error (messages quote invalid values)."""
    key = connection.get("api_key") if isinstance(connection, Mapping) else None
    if not isinstance(key, str):
        return problems
    secrets = (key, key.strip())
    return [{**problem, "message": redact(problem["message"], secrets)} for problem in problems]


def _wired_runtime() -> Runtime:
    from .plugins import extension_manager

    return Runtime(hooks=extension_manager().hook)


#: The process-wide runtime the host plugin uses, wired to the extension plugins.
default_runtime = ProcessSingleton(_wired_runtime)
