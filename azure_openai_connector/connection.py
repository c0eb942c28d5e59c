"""The Azure / OpenAI URL and auth rules, in one place: handlers never build URLs or headers."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, unquote, urlencode, urlsplit

from .errors import InputValidationError

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
API_KEY_AUTH = "api_key"
AZURE_HOST_TEMPLATE = "https://{resource}.openai.azure.com"
AZURE_V1_API = "v1"
AZURE_PREVIEW_API = "preview"
AZURE_V1_PATH_VERSIONS = (AZURE_V1_API, AZURE_PREVIEW_API)
# The newest dated GA version: what a v1 connection uses for a route the v1 API lacks.
AZURE_NEWEST_DATED_GA = "2024-10-21"
# Routes Azure's v1 API serves in preview only: a v1 connection asks for them with
# ?api-version=preview rather than failing.
AZURE_V1_PREVIEW_ONLY_ROUTES = ("images/", "audio/")
# Routes neither v1 spec has (legacy completions): a v1 connection sends them to the dated API.
AZURE_DATED_ONLY_ROUTES = ("completions",)
# Where the standard environment keeps an endpoint (errors name the one to set).
AZURE_ENDPOINT_VARIABLE = "AZURE_OPENAI_ENDPOINT"
OPENAI_ENDPOINT_VARIABLE = "OPENAI_BASE_URL"

# Escapes a raw-request path could use to leave the connection's host or its base path.
# Non-ASCII is refused too: servers that normalise Unicode read look-alike dots (U+FF0E) as ".".
# Compiled on first use: the range up to U+10FFFF takes milliseconds to compile, which every worker
# start would pay, and only raw requests need it.
_RAW_PATH_FORBIDDEN = r"[\\@#\s\x00-\x1f\x7f-\U0010ffff]|//|%(?![0-9A-Fa-f]{2})"
_raw_path_forbidden = functools.lru_cache(maxsize=1)(lambda: re.compile(_RAW_PATH_FORBIDDEN))
# "..;" is ".." to servlet-style servers.
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(;[^/]*)?(/|$)")
_MAX_DECODE_ROUNDS = 4


def is_loopback_host(host: Optional[str]) -> bool:
    """True for localhost and the loopback ranges (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Connection:
    """A validated connection: where requests go and how they authenticate.

    The API key, the client secret and the gateway values are held privately and never shown
    by repr or str. `auth` is ``api_key`` or one of the Microsoft Entra ID types, whose tokens the
    built-in Entra plugin (``entra.py``) supplies through the ``request_auth_headers`` hook."""

    is_openai: bool
    base_url: str
    api_version: str
    organization: Optional[str] = None
    project: Optional[str] = None
    _api_key: str = field(default="", repr=False, compare=False)
    auth: str = API_KEY_AUTH
    tenant_id: Optional[str] = None
    client_id: Optional[str] = None
    authority_host: Optional[str] = None
    token_scope: Optional[str] = None
    _client_secret: str = field(default="", repr=False, compare=False)
    _gateway_headers: Tuple[Tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    _gateway_query: Tuple[Tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def __repr__(self) -> str:
        service = "openai" if self.is_openai else "azure"
        shown = "api_key='***'" if self.uses_api_key else f"auth={self.auth!r}"
        return f"Connection(service={service!r}, base_url={self.base_url!r}, {shown})"

    __str__ = __repr__

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def client_secret(self) -> str:
        return self._client_secret

    @property
    def uses_api_key(self) -> bool:
        """True for key auth; False for the Microsoft Entra ID types (tokens from azure-identity)."""
        return self.auth == API_KEY_AUTH

    @property
    def secrets(self) -> Tuple[str, ...]:
        """Values that must never appear in logs or errors."""
        values = (self._api_key, self._client_secret,
                  *(value for _, value in self._gateway_headers), *(value for _, value in self._gateway_query))
        return tuple(value for value in values if value)

    @property
    def fingerprint(self) -> Tuple[Any, ...]:
        """What makes two connections share an HTTP session (secrets included, as-is, in memory)."""
        return (self.is_openai, self.base_url, self.api_version, self.organization, self.project,
                self._api_key, *self.identity_fingerprint, self.token_scope,
                self._gateway_headers, self._gateway_query)

    @property
    def identity_fingerprint(self) -> Tuple[Any, ...]:
        """What makes two connections share one Entra ID credential (and its token cache)."""
        return (self.auth, self.tenant_id, self.client_id, self._client_secret, self.authority_host)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def uses_v1_api(self) -> bool:
        """Azure's v1 API (`v1`, or `preview`): /openai/v1/<route>, the deployment in the body."""
        return not self.is_openai and self.api_version in AZURE_V1_PATH_VERSIONS

    @property
    def deployment_in_path(self) -> bool:
        """Azure's dated API names the deployment in the URL and takes no `model` in the body."""
        return not self.is_openai and not self.uses_v1_api

    def model_in_path(self, operation: str) -> bool:
        """Whether this operation's URL names the deployment (so the body carries no `model`):
        every route of a dated connection, and on v1 the routes only the dated API has."""
        return self.deployment_in_path or (self.uses_v1_api and operation in AZURE_DATED_ONLY_ROUTES)

    def api_version_for(self, operation: str) -> Optional[str]:
        """The api-version query value this operation is sent with (None: none at all)."""
        if self.is_openai:
            return None
        if self.model_in_path(operation):
            return self.api_version if self.deployment_in_path else AZURE_NEWEST_DATED_GA
        if self.api_version == AZURE_PREVIEW_API or operation.startswith(AZURE_V1_PREVIEW_ONLY_ROUTES):
            return AZURE_PREVIEW_API
        return None

    def operation_url(self, operation: str, model: str) -> str:
        """URL of an inference operation such as ``chat/completions`` for a model/deployment."""
        if self.is_openai:
            return self._with_gateway_query(f"{self.base_url}/{operation}")
        version = self.api_version_for(operation)
        query = f"?api-version={quote(version, safe='')}" if version else ""
        if not self.model_in_path(operation):
            return self._with_gateway_query(f"{self.base_url}/openai/v1/{operation}{query}")
        deployment = quote(model, safe="")
        return self._with_gateway_query(f"{self.base_url}/openai/deployments/{deployment}/{operation}{query}")

    def resource_url(self, *segments: str) -> str:
        """URL of a route that names no deployment (``resource_url("files", file_id, "content")``):
        Azure keeps files and batches per resource, on the v1 and the dated API alike."""
        path = "/".join(quote(segment, safe="") for segment in segments)
        if self.is_openai:
            return self._with_gateway_query(f"{self.base_url}/{path}")
        if not self.deployment_in_path:
            query = "?api-version=preview" if self.api_version == AZURE_PREVIEW_API else ""
            return self._with_gateway_query(f"{self.base_url}/openai/v1/{path}{query}")
        return self._with_gateway_query(
            f"{self.base_url}/openai/{path}?api-version={quote(self.api_version, safe='')}")

    def route_url(self, operation: str, model: str, *, oldest_dated_version: Optional[str] = None,
                  per_deployment: bool = True) -> str:
        """URL of an operation whose dated Azure route has its own version rules: on the dated API a
        connection older than `oldest_dated_version` uses that version for this route (the route
        exists from it on); `per_deployment=False` names no deployment (`/openai/responses`, the
        model in the body). OpenAI and Azure's v1 API route it as `operation_url` does."""
        if not self.deployment_in_path:
            return self.operation_url(operation, model)
        version = self.api_version
        if oldest_dated_version and version[:10] < oldest_dated_version[:10]:
            version = oldest_dated_version
        route = f"deployments/{quote(model, safe='')}/{operation}" if per_deployment else operation
        return self._with_gateway_query(f"{self.base_url}/openai/{route}?api-version={quote(version, safe='')}")

    def request_body(self, model: str, fields: Dict[str, Any],
                     operation: str = "chat/completions") -> Dict[str, Any]:
        """The JSON body for an inference call: `model` first where the API wants it in the body."""
        if self.model_in_path(operation):
            return fields
        return {"model": model, **fields}

    def models_url(self) -> str:
        """Where the service lists its models: OpenAI /v1/models; Azure /openai/v1/models on
        v1 and preview, /openai/models?api-version=... on a dated version."""
        if self.is_openai:
            return self._with_gateway_query(f"{self.base_url}/models")
        if self.uses_v1_api:
            query = "?api-version=preview" if self.api_version == AZURE_PREVIEW_API else ""
            return self._with_gateway_query(f"{self.base_url}/openai/v1/models{query}")
        return self._with_gateway_query(f"{self.base_url}/openai/models?api-version={quote(self.api_version, safe='')}")

    def default_headers(self) -> Dict[str, str]:
        """Non-secret headers sent on every request of this connection."""
        headers: Dict[str, str] = {}
        if self.is_openai and self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.is_openai and self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def gateway_headers(self) -> Dict[str, str]:
        """The gateway's extra headers (secret values: the session carries them to this host only)."""
        return dict(self._gateway_headers)

    def _with_gateway_query(self, url: str) -> str:
        if not self._gateway_query:
            return url
        return url + ("&" if "?" in url else "?") + urlencode(self._gateway_query)

    def api_key_headers(self) -> Dict[str, str]:
        """The built-in auth: `api-key` for Azure, a bearer token for OpenAI (nothing for the
        Entra ID types, whose token comes from the auth hook)."""
        if not self.uses_api_key:
            return {}
        if self.is_openai:
            return {"Authorization": f"Bearer {self._api_key}"}
        return {"api-key": self._api_key}

    # Raw requests -------------------------------------------------------------------------
    @property
    def raw_base(self) -> str:
        """What a raw-request path is appended to.

        OpenAI: the endpoint without its trailing /v1, so the seed's paths (/v1/models) work and a
        proxy's path prefix is kept. Azure: {endpoint}/openai, so /v1/... reaches the v1 API and
        /deployments/... the dated API."""
        if self.is_openai:
            return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        return f"{self.base_url}/openai"

    def _raw_api_version(self, path_part: str) -> Optional[str]:
        """The api-version a raw Azure path gets when it names none: v1 paths get `preview` on a
        preview connection (nothing on v1); dated paths get a dated version (the newest dated GA
        on a v1 connection, whose own version they do not understand)."""
        if path_part == "/v1" or path_part.startswith("/v1/"):
            return AZURE_PREVIEW_API if self.api_version == AZURE_PREVIEW_API else None
        return AZURE_NEWEST_DATED_GA if self.uses_v1_api else self.api_version

    def raw_url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        """Join a user's path to the base, refusing anything that could leave the host or base."""
        problems = raw_path_problems(path)
        if problems:
            raise InputValidationError([{"path": "url", "message": p} for p in problems])
        path_part, _, query_part = path.partition("?")
        params: List[Tuple[str, str]] = []
        for name, value in (query or {}).items():
            params.append((name, _query_value(value)))
        if not self.is_openai:
            given = query_part + "&" + "&".join(name for name, _ in params)
            if not re.search(r"(^|&)api-version(=|&|$)", given):
                version = self._raw_api_version(path_part)
                if version:
                    params.append(("api-version", version))
        given_names = {name for name, _ in params} | {part.partition("=")[0] for part in query_part.split("&")}
        params.extend((name, value) for name, value in self._gateway_query if name not in given_names)
        extra = urlencode(params)
        joined_query = "&".join(part for part in (query_part, extra) if part)
        url = self.raw_base + path_part + (f"?{joined_query}" if joined_query else "")
        final = urlsplit(url)
        if f"{final.scheme}://{final.netloc}" != self.origin or not final.path.startswith(
                urlsplit(self.raw_base).path):
            raise InputValidationError([{"path": "url", "message": "must stay on the connection's host"}])
        return url


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def raw_path_problems(path: str) -> List[str]:
    """Why a raw-request path is refused (empty when it is a plain path on the base)."""
    if not isinstance(path, str) or not path.startswith("/"):
        return ["must be a path starting with / (the base URL is already included)"]
    problems: List[str] = []
    path_part = path.partition("?")[0]
    decoded = path_part
    for _ in range(_MAX_DECODE_ROUNDS):
        if _raw_path_forbidden().search(decoded) or _DOT_SEGMENT.search(decoded):
            problems.append("must be a plain path: no //, \\, @, #, whitespace, control or "
                            "non-ASCII characters, broken % escapes or . and .. segments, even percent-encoded")
            break
        next_round = unquote(decoded)
        if next_round == decoded:
            break
        decoded = next_round
    else:
        problems.append("is percent-encoded too many times")
    query_part = path.partition("?")[2]
    if re.search(r"[#\s\x00-\x1f\x7f]", unquote(query_part)):
        problems.append("the query may not hold #, whitespace or control characters")
    return problems


def connection_from_values(values: Mapping[str, Any]) -> Connection:
    """Build a Connection from validated connection values, applying the cross-field rules."""
    is_openai = bool(values.get("is_openai_key"))
    endpoint = values.get("endpoint")
    organization = values.get("organization")
    problems: List[Dict[str, str]] = []
    if endpoint:
        base_url, problem = _normalise_endpoint(endpoint, is_openai)
        if problem:
            problems.append({"path": "connection/endpoint", "message": problem})
    elif is_openai:
        base_url = OPENAI_DEFAULT_BASE
    elif organization:
        base_url = AZURE_HOST_TEMPLATE.format(resource=organization.lower())
    else:
        base_url = ""
        problems.append({
            "path": "connection/organization",
            "message": "is required for Azure OpenAI (the resource name) unless endpoint is set; "
                       "for an OpenAI key set is_openai_key to true",
        })
    auth = values.get("auth", API_KEY_AUTH)
    if auth != API_KEY_AUTH and is_openai:
        problems.append({"path": "connection/auth",
                         "message": "Microsoft Entra ID sign-in is for Azure OpenAI; an OpenAI key uses api_key"})
    if problems:
        raise InputValidationError(problems, subject="connection")
    return Connection(
        is_openai=is_openai,
        base_url=base_url,
        api_version=values["api_version"],
        # For Azure the organization is the resource name, not a header.
        organization=organization if is_openai else None,
        project=values.get("project") if is_openai else None,
        _api_key=values.get("api_key", "") if auth == API_KEY_AUTH else "",
        auth=auth,
        tenant_id=values.get("tenant_id"),
        client_id=values.get("client_id"),
        authority_host=(values["authority_host"].rstrip("/") if values.get("authority_host") else None),
        token_scope=values.get("token_scope"),
        _client_secret=values.get("client_secret", "") if auth != API_KEY_AUTH else "",
        _gateway_headers=tuple(sorted((values.get("gateway_headers") or {}).items())),
        _gateway_query=tuple(sorted((values.get("gateway_query") or {}).items())),
    )


def endpoint_rule(is_openai: bool) -> str:
    """What an endpoint must look like, in words, naming the environment variable that holds it."""
    example = OPENAI_DEFAULT_BASE if is_openai else AZURE_HOST_TEMPLATE.format(resource="my-resource")
    return (f"must start with https:// (http:// only for a loopback host such as 127.0.0.1), "
            f"as in {example}; from the environment, set "
            f"{OPENAI_ENDPOINT_VARIABLE if is_openai else AZURE_ENDPOINT_VARIABLE} to such a URL")


def readable_connection_problems(problems: List[Dict[str, str]],
                                 values: Optional[Mapping[str, Any]]) -> List[Dict[str, str]]:
    """`problems` with the endpoint's pattern failure (a regex nobody should read) said in words."""
    is_openai = bool((values or {}).get("is_openai_key") is True)
    return [{**problem, "message": endpoint_rule(is_openai)}
            if problem.get("path") == "connection/endpoint" and "does not match" in problem.get("message", "")
            else problem for problem in problems]


def transport_failure_message(exc: BaseException, url: Optional[str]) -> str:
    """One line for a request that got no answer: "could not connect to http://127.0.0.1:9: connection refused"."""
    where = "the service"
    if url:
        parts = urlsplit(url)
        where = f"{parts.scheme}://{parts.netloc}"
    chain = _exception_chain(exc)
    connecting = any(type(item).__name__ in ("NewConnectionError", "NameResolutionError")
                     or isinstance(item, (ConnectionRefusedError, socket.gaierror)) for item in chain)
    for item in chain:
        for kind, reason in _TRANSPORT_REASONS:
            if isinstance(item, kind):
                return f"could not connect to {where}: {reason}" if connecting else (
                    f"the connection to {where} failed: {reason}")
    root = chain[-1]
    detail = getattr(root, "strerror", None) or str(root) or type(root).__name__
    return f"could not connect to {where}: {detail}" if connecting else f"the connection to {where} failed: {detail}"


# Most specific first: what a person should read for each low-level failure.
_TRANSPORT_REASONS: Tuple[Tuple[type, str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "the host name could not be resolved"),
    (ConnectionResetError, "the connection was reset"),
    (ssl.SSLError, "the TLS handshake failed"),
    (http.client.RemoteDisconnected, "the server closed the connection without answering"),
)
_MAX_CHAIN = 12


def _exception_chain(exc: BaseException) -> List[BaseException]:
    """`exc` and what caused it: urllib3 nests the socket error in `reason`, `args[0]` and `__cause__`."""
    chain: List[BaseException] = []
    current: Optional[BaseException] = exc
    while current is not None and current not in chain and len(chain) < _MAX_CHAIN:
        chain.append(current)
        first_arg = current.args[0] if current.args else None
        current = (getattr(current, "reason", None) if isinstance(getattr(current, "reason", None), BaseException)
                   else first_arg if isinstance(first_arg, BaseException)
                   else current.__cause__ or current.__context__)
    return chain


def _normalise_endpoint(endpoint: str, is_openai: bool) -> Tuple[str, Optional[str]]:
    if "\\" in endpoint:
        # urlsplit reads "https://localhost\\.evil.com" as one host, urllib3 as another.
        return "", "must not contain a backslash"
    try:
        parts = urlsplit(endpoint.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "", f"is not a valid URL: it {endpoint_rule(is_openai)}"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return "", endpoint_rule(is_openai)
    if parts.username is not None or parts.password is not None:
        return "", "must not contain a user name or password"
    if parts.query or parts.fragment:
        return "", "must not contain a query or fragment"
    if parts.scheme.lower() != "https" and not is_loopback_host(host):
        return "", endpoint_rule(is_openai)
    path = parts.path.rstrip("/")
    if not is_openai:
        # AZURE_OPENAI_ENDPOINT has no /openai, but people often paste it with one.
        for suffix in ("/openai/v1", "/openai"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
    return f"{parts.scheme.lower()}://{parts.netloc}{path}", None


#: The environment variable a multi-tenant host sets to "public" to restrict endpoints.
ENDPOINT_POLICY_ENV = "AZURE_OPENAI_CONNECTOR_ENDPOINT_POLICY"
#: Extra host names a "public" policy accepts (comma-separated), such as a company's gateway.
ALLOWED_HOSTS_ENV = "AZURE_OPENAI_CONNECTOR_ALLOWED_HOSTS"
ENDPOINT_POLICIES = ("open", "public")
#: The host suffixes of the public Azure OpenAI, Azure AI and OpenAI services.
PUBLIC_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com",
                        ".openai.azure.us", ".cognitiveservices.azure.us", ".openai.azure.cn",
                        ".cognitiveservices.azure.cn")
PUBLIC_HOSTS = ("api.openai.com",)


def endpoint_policy_problem(base_url: str, policy: str, allowed_hosts: Tuple[str, ...] = ()) -> Optional[str]:
    """Why a "public" policy refuses this endpoint, or None. For a host whose tenants type the
    endpoint: only the public services' hosts (and `allowed_hosts`), and never an address that
    resolves to a loopback, private, link-local or otherwise non-public network."""
    if policy == "open":
        return None
    host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    allowed = {name.strip().rstrip(".").lower() for name in allowed_hosts if name.strip()}
    if not (host in PUBLIC_HOSTS or host in allowed or host.endswith(PUBLIC_HOST_SUFFIXES)):
        return "is not a public Azure OpenAI, Azure AI or OpenAI host, nor an allowed one"
    return public_address(host)[1]


def public_address(host: str) -> Tuple[Optional[str], Optional[str]]:
    """(an address of `host`, None) when every address it resolves to is public; (None, why
    not) when one is loopback, private, link-local, multicast or otherwise not global, or when the
    name does not resolve."""
    import socket  # only a host with the policy on resolves names

    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})
    except (OSError, UnicodeError):
        return None, "does not resolve to an address"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return None, f"resolves to {address}, which is not a public address"
    return (addresses[0], None) if addresses else (None, "does not resolve to an address")
