"""The Azure / OpenAI URL and auth rules, in one place: handlers never build URLs or headers."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, unquote, urlencode, urlsplit

from .errors import InputValidationError

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
AZURE_HOST_TEMPLATE = "https://{resource}.openai.azure.com"
AZURE_V1_API = "v1"

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

    The API key is held privately and never shown by repr or str."""

    is_openai: bool
    base_url: str
    api_version: str
    organization: Optional[str] = None
    project: Optional[str] = None
    _api_key: str = field(default="", repr=False, compare=False)

    def __repr__(self) -> str:
        service = "openai" if self.is_openai else "azure"
        return f"Connection(service={service!r}, base_url={self.base_url!r}, api_key='***')"

    __str__ = __repr__

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def secrets(self) -> Tuple[str, ...]:
        """Values that must never appear in logs or errors."""
        return (self._api_key,) if self._api_key else ()

    @property
    def fingerprint(self) -> Tuple[Any, ...]:
        """What makes two connections share an HTTP session (the key included, as-is, in memory)."""
        return (self.is_openai, self.base_url, self.api_version, self.organization, self.project,
                self._api_key)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def deployment_in_path(self) -> bool:
        """Azure's dated API names the deployment in the URL and takes no `model` in the body."""
        return not self.is_openai and self.api_version != AZURE_V1_API

    def operation_url(self, operation: str, model: str) -> str:
        """URL of an inference operation such as ``chat/completions`` for a model/deployment."""
        if self.is_openai:
            return f"{self.base_url}/{operation}"
        if self.api_version == AZURE_V1_API:
            return f"{self.base_url}/openai/v1/{operation}"
        deployment = quote(model, safe="")
        return (f"{self.base_url}/openai/deployments/{deployment}/{operation}"
                f"?api-version={quote(self.api_version, safe='')}")

    def resource_url(self, *segments: str) -> str:
        """URL of a route that names no deployment (``resource_url("files", file_id, "content")``):
        Azure keeps files and batches per resource, on the v1 and the dated API alike."""
        path = "/".join(quote(segment, safe="") for segment in segments)
        if self.is_openai:
            return f"{self.base_url}/{path}"
        if not self.deployment_in_path:
            return f"{self.base_url}/openai/v1/{path}"
        return f"{self.base_url}/openai/{path}?api-version={quote(self.api_version, safe='')}"

    def route_url(self, operation: str, model: str, *, preview_only: bool = False,
                  oldest_dated_version: Optional[str] = None, per_deployment: bool = True) -> str:
        """URL of an operation whose Azure route has its own version rules: a `preview_only` route
        (images) takes `?api-version=preview` on v1; on the dated API a connection older than
        `oldest_dated_version` uses that version for this route (the route exists from it on);
        `per_deployment=False` names no deployment (`/openai/responses`, the model in the body)."""
        if self.is_openai or (self.api_version == AZURE_V1_API and not preview_only):
            return self.operation_url(operation, model)
        if self.api_version == AZURE_V1_API:
            return f"{self.base_url}/openai/v1/{operation}?api-version=preview"
        version = self.api_version
        if oldest_dated_version and version[:10] < oldest_dated_version[:10]:
            version = oldest_dated_version
        route = f"deployments/{quote(model, safe='')}/{operation}" if per_deployment else operation
        return f"{self.base_url}/openai/{route}?api-version={quote(version, safe='')}"

    def request_body(self, model: str, fields: Dict[str, Any]) -> Dict[str, Any]:
        """The JSON body for an inference call: `model` first where the API wants it in the body."""
        if self.deployment_in_path:
            return fields
        return {"model": model, **fields}

    def default_headers(self) -> Dict[str, str]:
        """Non-secret headers sent on every request of this connection."""
        headers: Dict[str, str] = {}
        if self.is_openai and self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.is_openai and self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def api_key_headers(self) -> Dict[str, str]:
        """The built-in auth: `api-key` for Azure, a bearer token for OpenAI."""
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

    def raw_url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        """Join a user's path to the base, refusing anything that could leave the host or base."""
        problems = raw_path_problems(path)
        if problems:
            raise InputValidationError([{"path": "url", "message": p} for p in problems])
        path_part, _, query_part = path.partition("?")
        params: List[Tuple[str, str]] = []
        for name, value in (query or {}).items():
            params.append((name, _query_value(value)))
        if not self.is_openai and not (path_part == "/v1" or path_part.startswith("/v1/")):
            given = query_part + "&" + "&".join(name for name, _ in params)
            if not re.search(r"(^|&)api-version(=|&|$)", given):
                params.append(("api-version", self.api_version))
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
    if problems:
        raise InputValidationError(problems, subject="connection")
    return Connection(
        is_openai=is_openai,
        base_url=base_url,
        api_version=values["api_version"],
        # For Azure the organization is the resource name, not a header.
        organization=organization if is_openai else None,
        project=values.get("project") if is_openai else None,
        _api_key=values["api_key"],
    )


def _normalise_endpoint(endpoint: str, is_openai: bool) -> Tuple[str, Optional[str]]:
    try:
        parts = urlsplit(endpoint.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "", "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return "", "must be an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "", "must not contain a user name or password"
    if parts.query or parts.fragment:
        return "", "must not contain a query or fragment"
    if parts.scheme.lower() != "https" and not is_loopback_host(host):
        return "", "must use https unless the host is a loopback address"
    path = parts.path.rstrip("/")
    if not is_openai:
        # AZURE_OPENAI_ENDPOINT has no /openai, but people often paste it with one.
        for suffix in ("/openai/v1", "/openai"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
    return f"{parts.scheme.lower()}://{parts.netloc}{path}", None
