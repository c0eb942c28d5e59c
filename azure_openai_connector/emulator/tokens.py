"""The emulator's own Microsoft Entra ID: a token endpoint for client credentials and managed identity.

It issues opaque bearer tokens with an expiry, answers the two shapes azure-identity speaks
(the v2.0 client-credentials form post with its OpenID discovery document, and App Service's
managed-identity GET), and lets tests expire a token early to prove that clients refresh.
Shares no code with the client side.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import parse_qsl

from .recording import RecordedRequest
from .reply import Reply, json_reply

TOKEN_LIFETIME_SECONDS = 3600
MANAGED_IDENTITY_PATH = "/msi/token"
MANAGED_IDENTITY_API_VERSION = "2019-08-01"
DEFAULT_TENANT = "emulator-tenant"
DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_IDENTITY_HEADER = "emulator-identity-header"

_TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
_DISCOVERY_PATH = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$")


@dataclass(frozen=True)
class IssuedToken:
    """One token: who it was for, the audience, and when it stops working (epoch seconds)."""

    value: str
    audience: str
    expires_on: float
    grant: str


class TokenIssuer:
    """Issues and checks tokens; thread-safe. `clock` is the wall clock (epoch seconds)."""

    def __init__(self, *, tenant: str = DEFAULT_TENANT, client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET, identity_header: str = DEFAULT_IDENTITY_HEADER,
                 lifetime: int = TOKEN_LIFETIME_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.identity_header = identity_header
        self.lifetime = lifetime
        self.clock = clock
        #: Test knob: tokens are issued already expired (as if revoked at once), so every one is refused.
        self.issue_expired = False
        self._tokens: Dict[str, IssuedToken] = {}
        self._lock = threading.Lock()

    # --- test knobs ------------------------------------------------------------------

    @property
    def issued(self) -> Tuple[IssuedToken, ...]:
        """Every token issued so far, oldest first."""
        with self._lock:
            return tuple(self._tokens.values())

    def expire(self, value: Optional[str] = None) -> int:
        """Make one token (default: every token) expire now, as a revocation would; returns how many."""
        with self._lock:
            chosen = [value] if value is not None else list(self._tokens)
            now = self.clock()
            for name in chosen:
                token = self._tokens.get(name)
                if token is not None:
                    self._tokens[name] = IssuedToken(token.value, token.audience, now - 1, token.grant)
            return sum(1 for name in chosen if name in self._tokens)

    def is_valid(self, value: Optional[str]) -> bool:
        with self._lock:
            token = self._tokens.get(value or "")
        return token is not None and token.expires_on > self.clock()

    # --- routes ----------------------------------------------------------------------

    def answer(self, request: RecordedRequest, base_url: str) -> Optional[Reply]:
        """The token endpoints' answer, or None when the request is for another route."""
        if request.path == MANAGED_IDENTITY_PATH:
            return self._managed_identity(request)
        found = _TOKEN_PATH.match(request.path)
        if found:
            return self._client_credentials(request, found.group("tenant"))
        found = _DISCOVERY_PATH.match(request.path)
        if found and request.method == "GET":
            return self._discovery(found.group("tenant"), base_url)
        return None

    def _issue(self, audience: str, grant: str) -> IssuedToken:
        expires_on = self.clock() + (-1 if self.issue_expired else self.lifetime)
        token = IssuedToken(f"emu-{grant}-{secrets.token_urlsafe(24)}", audience, expires_on, grant)
        with self._lock:
            self._tokens[token.value] = token
        return token

    def _client_credentials(self, request: RecordedRequest, tenant: str) -> Reply:
        if request.method != "POST":
            return _aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
        form = dict(parse_qsl(request.body.decode("utf-8", errors="replace")))
        if tenant != self.tenant:
            return _aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003, "The grant type is not supported.")
        if form.get("client_id") != self.client_id:
            return _aad_error(400, "unauthorized_client", 700016, "Application not found in the directory.")
        if form.get("client_secret") != self.client_secret:
            return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return _aad_error(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        token = self._issue(scope[: -len("/.default")], "client")
        return json_reply(200, {"token_type": "Bearer", "expires_in": self.lifetime,
                                "ext_expires_in": self.lifetime, "access_token": token.value})

    def _managed_identity(self, request: RecordedRequest) -> Reply:
        # App Service, Functions and Container Apps: GET {IDENTITY_ENDPOINT}?resource=...&api-version=2019-08-01
        if request.headers.get("x-identity-header") != self.identity_header:
            return json_reply(401, {"statusCode": 401, "message": "Unauthorized request."})
        if request.query.get("api-version") != MANAGED_IDENTITY_API_VERSION or not request.query.get("resource"):
            return json_reply(400, {"statusCode": 400, "message": "resource and api-version=2019-08-01 are required"})
        token = self._issue(request.query["resource"], "identity")
        return json_reply(200, {"access_token": token.value, "expires_on": str(int(token.expires_on)),
                                "resource": token.audience, "token_type": "Bearer",
                                "client_id": request.query.get("client_id", self.client_id)})

    def _discovery(self, tenant: str, base_url: str) -> Reply:
        # MSAL reads the token endpoint from the tenant's OpenID configuration before the first post.
        root = f"{base_url}/{tenant}"
        return json_reply(200, {"token_endpoint": f"{root}/oauth2/v2.0/token",
                                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                                "issuer": f"{root}/v2.0", "tenant_region_scope": "WW",
                                "token_endpoint_auth_methods_supported": ["client_secret_post"]})


def is_token_path(path: str) -> bool:
    """True for the token endpoints (they take no API key)."""
    return path == MANAGED_IDENTITY_PATH or bool(_TOKEN_PATH.match(path) or _DISCOVERY_PATH.match(path))


def _aad_error(status: int, error: str, code: int, description: str) -> Reply:
    return json_reply(status, {"error": error, "error_description": f"AADSTS{code}: {description}",
                               "error_codes": [code]})
