"""Keyless auth: Microsoft Entra ID tokens from azure-identity, for connections whose `auth` is not
`api_key`. The built-in plugin in `extensions.py` hands them to the HTTP layer through the
`request_auth_headers` hook, where any third-party plugin can still override it.

One credential per connection identity, process-wide; its token is cached until shortly before
expiry and fetched by one thread while the others wait (32 threads must not fetch 32 tokens).
azure-identity is imported only when a keyless connection first needs a token.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

from . import process_state
from .errors import ConnectorError, EntraTokenError
from .process_state import ProcessSingleton

if TYPE_CHECKING:
    from .connection import Connection

ENTRA_CLIENT_SECRET = "entra_client_secret"
MANAGED_IDENTITY = "managed_identity"
AZURE_DEFAULT_CREDENTIAL = "azure_default_credential"
INSTALL_HINT = "pip install 'azure-openai-connector[entra]'"
# A token is renewed this long before it expires, so no request carries one that lapses in flight.
REFRESH_MARGIN_SECONDS = 300.0
MAX_CACHED_CREDENTIALS = 64
# Hosts whose Entra ID metadata azure-identity can discover; any other authority (Azure Stack,
# ADFS, a local stand-in) is used as given.
KNOWN_AUTHORITY_HOSTS = frozenset({"login.microsoftonline.com", "login.microsoftonline.us",
                                   "login.chinacloudapi.cn", "login.microsoftonline.de"})


class TokenSource:
    """One connection identity's credential and its cached token per scope.

    Thread-safe: one thread fetches while the others wait for its answer. `clock` is the wall
    clock (token expiries are epoch seconds)."""

    def __init__(self, connection: "Connection", clock: Callable[[], float] = time.time) -> None:
        self._connection = connection
        self._clock = clock
        self._credential: Any = None
        self._tokens: Dict[str, Tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.fetches = 0
        process_state.renew_after_fork(self)

    def __repr__(self) -> str:
        return f"TokenSource(auth={self._connection.auth!r}, fetches={self.fetches})"

    def after_fork_in_child(self) -> None:
        """A fresh lock and credential (the parent's holds its pooled sockets); tokens stay valid."""
        self._lock = threading.Lock()
        self._credential = None

    def token(self, scope: str) -> str:
        """A token for `scope` that stays valid for at least the refresh margin."""
        cached = self._tokens.get(scope)
        if cached is not None and cached[1] - REFRESH_MARGIN_SECONDS > self._clock():
            return cached[0]
        with self._lock:
            cached = self._tokens.get(scope)
            if cached is not None and cached[1] - REFRESH_MARGIN_SECONDS > self._clock():
                return cached[0]
            return self._fetch(scope)

    def renew(self, scope: str, rejected: Optional[str]) -> bool:
        """After a 401 on `rejected`: fetch a new token unless another thread already did; True
        when the cache now holds a different token than the one refused."""
        with self._lock:
            cached = self._tokens.get(scope)
            if cached is not None and rejected is not None and cached[0] != rejected:
                return True
            # A credential caches tokens itself: a new one is the only sure way past a revoked token.
            self._close_credential()
            return self._fetch(scope) != rejected

    def close(self) -> None:
        with self._lock:
            self._close_credential()

    def _fetch(self, scope: str) -> str:
        if self._credential is None:
            self._credential = new_credential(self._connection)
        try:
            access = self._credential.get_token(scope)
        except Exception as exc:  # noqa: BLE001 - azure-identity raises many kinds; one typed error out
            raise EntraTokenError(_describe_failure(exc, self._connection)) from None
        self.fetches += 1
        self._tokens[scope] = (access.token, float(access.expires_on))
        return access.token

    def _close_credential(self) -> None:
        credential, self._credential = self._credential, None
        close = getattr(credential, "close", None)
        if close is not None:
            close()


def new_credential(connection: "Connection") -> Any:
    """The azure-identity credential for a keyless connection (ConnectorError naming the extra when
    azure-identity is not installed)."""
    try:
        import azure.identity as identity
    except ImportError:
        raise ConnectorError(f"auth {connection.auth!r} needs azure-identity: {INSTALL_HINT}") from None
    options: Dict[str, Any] = {}
    if connection.authority_host:
        options["authority"] = connection.authority_host
        if _host_of(connection.authority_host) not in KNOWN_AUTHORITY_HOSTS:
            options["disable_instance_discovery"] = True
    if connection.auth == ENTRA_CLIENT_SECRET:
        return identity.ClientSecretCredential(connection.tenant_id, connection.client_id,
                                               connection.client_secret, **options)
    if connection.auth == MANAGED_IDENTITY:
        return identity.ManagedIdentityCredential(client_id=connection.client_id)
    if connection.auth == AZURE_DEFAULT_CREDENTIAL:
        options.pop("disable_instance_discovery", None)
        if connection.client_id:
            options["managed_identity_client_id"] = connection.client_id
        if connection.tenant_id:
            options["additionally_allowed_tenants"] = [connection.tenant_id]
        return identity.DefaultAzureCredential(**options)
    raise ConnectorError(f"unknown auth type {connection.auth!r}")


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "").lower()


def _describe_failure(exc: Exception, connection: "Connection") -> str:
    from .redaction import redact

    # azure-identity's messages can quote the request; never the secret.
    text = redact(f"{type(exc).__name__}: {exc}", connection.secrets)
    return f"could not get a Microsoft Entra ID token ({connection.auth}): {text.splitlines()[0] if text else ''}"


class _TokenSources:
    """The process-wide TokenSource per connection identity (least recently used dropped)."""

    def __init__(self) -> None:
        self._sources: "OrderedDict[Tuple[Any, ...], TokenSource]" = OrderedDict()
        self._lock = threading.Lock()
        process_state.renew_after_fork(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def of(self, connection: "Connection") -> TokenSource:
        key = connection.identity_fingerprint
        with self._lock:
            source = self._sources.get(key)
            if source is None:
                source = self._sources[key] = TokenSource(connection)
                if len(self._sources) > MAX_CACHED_CREDENTIALS:
                    self._sources.popitem(last=False)
            else:
                self._sources.move_to_end(key)
            return source


token_sources = ProcessSingleton(_TokenSources)


def entra_auth_headers(connection: "Connection") -> Optional[Dict[str, str]]:
    """`Authorization: Bearer <token>` for a keyless connection; None for key auth."""
    if connection.uses_api_key:
        return None
    return {"Authorization": f"Bearer {token_sources().of(connection).token(_scope(connection))}"}


def renew_entra_token(connection: "Connection", rejected_headers: Mapping[str, str]) -> Optional[bool]:
    """After a 401: a new token for a keyless connection (None for key auth: nothing to renew)."""
    if connection.uses_api_key:
        return None
    rejected = rejected_headers.get("Authorization", "").partition(" ")[2] or None
    return token_sources().of(connection).renew(_scope(connection), rejected)


def _scope(connection: "Connection") -> str:
    if not connection.token_scope:  # the manifest's default fills it in for validated connections
        raise ConnectorError("a keyless connection needs token_scope")
    return connection.token_scope
