"""Hook markers and specifications: the host contract and the connector's extension points.

Two pluggy projects, so a host sees only what it calls:
- ``workflow_connectors``: what a host platform calls on a connector it discovered through the
  ``workflow_connectors`` entry point group (``connector_manifest``, ``execute_action``).
- ``azure_openai_connector``: what third-party plugins (entry point group
  ``azure_openai_connector``) implement to change how requests are made: auth, observers, and
  connections passed by reference.
Hooks are always called with keyword arguments; new arguments are only ever added at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

import pluggy

if TYPE_CHECKING:  # for the annotations only: importing the HTTP layer here would cost every start
    from .connection import Connection
    from .http import Exchange, OutgoingRequest

HOST_PROJECT = "workflow_connectors"
EXTENSION_PROJECT = "azure_openai_connector"

host_hookspec = pluggy.HookspecMarker(HOST_PROJECT)
host_hookimpl = pluggy.HookimplMarker(HOST_PROJECT)
hookspec = pluggy.HookspecMarker(EXTENSION_PROJECT)
hookimpl = pluggy.HookimplMarker(EXTENSION_PROJECT)


class HostSpecs:
    """What a host platform calls on a discovered connector."""

    @host_hookspec(firstresult=True)
    def connector_manifest(self) -> Dict[str, Any]:
        """Called when a host discovers the connector: return its manifest (connector.yaml, parsed
        and validated) so the host can build the connection and action forms."""

    @host_hookspec(firstresult=True)
    def execute_action(
        self, action: str, connection: Dict[str, Any], inputs: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Called to run one workflow step: validate ``inputs`` (missing ones take the manifest's
        defaults) and ``connection``, call the service, and return the JSON result. Raises a
        ``ConnectorError`` subclass on failure."""

    @host_hookspec(firstresult=True)
    def input_options(
        self, action: str, input: str, connection: Dict[str, Any], refresh: bool  # noqa: A002
    ) -> List[Dict[str, Any]]:
        """Called when a host builds a select for an input the manifest marks with ``x-options``
        (the ``model`` of every action): return the live options for ``connection``, a list of
        ``{value, label, capabilities, capabilities_known, lifecycle{status, retirement_date}}``
        (``status``: available, preview, deprecated or retired). Cached per connection for a few
        minutes; ``refresh=True`` asks the service again. ``[]`` for an input without
        ``x-options``. Raises ``InputValidationError`` or ``ApiError`` like ``execute_action``."""


class ExtensionSpecs:
    """What third-party plugins implement to extend the connector."""

    @hookspec(firstresult=True)
    def request_auth_headers(self, connection: "Connection") -> Optional[Mapping[str, str]]:
        """Called before every request attempt: return the auth headers for ``connection`` (for
        example ``{"Authorization": "Bearer <Entra ID token>"}``), or None to defer to the next
        plugin; the built-in answer sends the connection's API key. Every value returned is
        treated as a secret and redacted from logs and errors."""

    @hookspec
    def http_request_started(self, request: "OutgoingRequest") -> None:
        """Called before every attempt with an ``OutgoingRequest`` (action, method, URL, attempt,
        redacted headers). For tracing and metrics; must not block."""

    @hookspec
    def http_request_finished(self, exchange: "Exchange") -> None:
        """Called after every attempt with an ``Exchange`` (the request, status, elapsed seconds,
        request ID, the error if any, and whether it will be retried)."""

    @hookspec(firstresult=True)
    def resolve_connection(self, name: str) -> Optional[Mapping[str, Any]]:
        """Called before validation when a step's connection is the string ``"conn:NAME"``:
        return the connection values for ``name`` (the dict a host would otherwise pass), or None
        when this plugin does not know it. Lets a queued task carry a name instead of the key; it
        runs on every step, so a rotated key is picked up. Raise a ``ConnectorError`` subclass for
        a lookup that failed (``ApiConnectionError`` when retrying later may help)."""

    @hookspec(firstresult=True)
    def batch_pacer(self, connection: "Connection", deployment: str, max_concurrency: int) -> Optional[Any]:
        """Called when a batch step (``create_multiple_chat_completions``, ``summarize_text``)
        starts: return the pacer its requests share, for example one an engine shares across its
        workers, or None for this process's own pacer of ``deployment`` on ``connection``. A pacer
        has ``before_attempt()`` (may block) and ``after_attempt(status, retry_after, headers)``
        (``headers``: the answer's, None when none came), and may have ``for_request(tokens)``
        returning the pacer of one request estimated at ``tokens``."""

    @hookspec(firstresult=True)
    def request_auth_refresh(self, connection: "Connection",
                             rejected_headers: Mapping[str, str]) -> Optional[bool]:
        """Called once per request when the service answered 401 to the auth headers
        ``rejected_headers`` (a token revoked or expired early): renew the credential and return
        True to have the request sent once more with fresh ``request_auth_headers``, or None to
        defer to the next plugin (nobody renewing: the 401 is raised as it is)."""
