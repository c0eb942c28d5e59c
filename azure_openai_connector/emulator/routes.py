"""The emulated service: which paths exist, who may call them, and what a well-behaved answer is."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple

from .call import Call, Handler
from .errors import AZURE, OPENAI, ServiceRefusal, azure_error, openai_error, unauthorized_body
from .batches import BatchStore, cancel_batch, create_batch, list_batches, retrieve_batch
from .files import FileStore
from .handlers import (
    create_chat_completion,
    create_completion,
    delete_file,
    download_file,
    list_files,
    list_models,
    retrieve_file,
    retrieve_model,
    upload_file,
)
from .images import create_image, image_blob
from .recording import RecordedRequest
from .reply import Reply, json_reply

BLOB = "blob"  # image downloads: they stand for a storage URL, so no auth and no API headers

AZURE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
AZURE_V1_VERSIONS = ("v1", "latest", "preview")


@dataclass
class Route:
    pattern: "re.Pattern[str]"
    dialect: str
    azure_dated: bool
    handlers: Dict[str, Handler]
    operation: str = "the"
    template: str = ""

    @property
    def allowed(self) -> str:
        return ", ".join(sorted(self.handlers))


@dataclass
class Service:
    """Configuration of one emulated resource (credentials, base URL, stored files)."""

    api_key: str
    bearer_tokens: FrozenSet[str]
    base_url: str = ""
    files: FileStore = field(default_factory=FileStore)
    deployment_models: Dict[str, str] = field(default_factory=dict)
    batches: BatchStore = field(init=False)

    def __post_init__(self) -> None:
        self.batches = BatchStore(self.files)

    def answer(self, request: RecordedRequest, json_ok: bool, serial: int) -> Reply:
        dialect = dialect_for(request.path)
        try:
            return self._answer(request, json_ok, serial, dialect)
        except ServiceRefusal as refusal:
            return json_reply(refusal.status, refusal.body(dialect if dialect != BLOB else OPENAI))

    def _answer(self, request: RecordedRequest, json_ok: bool, serial: int, dialect: str) -> Reply:
        found = match_route(request.path)
        if found is None:
            return route_not_found(request, dialect)
        if dialect != BLOB and not self.authorized(request, dialect):
            return json_reply(401, unauthorized_body(dialect, presented_secret(request, dialect)))
        route, params = found
        handler = route.handlers.get(request.method)
        if handler is None:
            body = (
                azure_error("405", "Method not allowed")
                if dialect == AZURE
                else openai_error(f"Method not allowed ({request.method} {request.path}).", "invalid_request_error")
            )
            return json_reply(405, body, {"allow": route.allowed})
        if dialect == AZURE:
            refusal = check_api_version(request.query.get("api-version"), required=route.azure_dated)
            if refusal is not None:
                return refusal
        call = Call(request, json_ok, dialect, route.azure_dated, params, serial, self.base_url, self.files,
                    self.batches, self.deployment_models)
        return handler(call)

    def authorized(self, request: RecordedRequest, dialect: str) -> bool:
        bearer = _bearer_token(request)
        if dialect == OPENAI:
            return bearer == self.api_key
        return request.headers.get("api-key") == self.api_key or (
            bearer is not None and (bearer == self.api_key or bearer in self.bearer_tokens)
        )


def dialect_for(path: str) -> str:
    if path.startswith("/openai/") or path == "/openai":
        return AZURE
    if path.startswith("/images/"):
        return BLOB
    return OPENAI


def presented_secret(request: RecordedRequest, dialect: str) -> Optional[str]:
    if dialect == AZURE:
        return request.headers.get("api-key") or _bearer_token(request)
    return _bearer_token(request)


def _bearer_token(request: RecordedRequest) -> Optional[str]:
    value = request.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def check_api_version(version: Optional[str], required: bool) -> Optional[Reply]:
    """The live service answers a missing api-version with 404 and a bad one with 400."""
    if version is None:
        return json_reply(404, azure_error("404", "Resource not found")) if required else None
    if AZURE_VERSION.match(version) or (not required and version in AZURE_V1_VERSIONS):
        return None
    return json_reply(400, azure_error("BadRequest", "API version not supported"))


def route_not_found(request: RecordedRequest, dialect: str) -> Reply:
    if dialect == AZURE:
        return json_reply(404, azure_error("404", "Resource not found"))
    return json_reply(
        404, openai_error(f"Invalid URL ({request.method} {request.path})", "invalid_request_error")
    )


# --- the route table ----------------------------------------------------------


def _route(template: str, dialect: str, azure_dated: bool, operation: str = "the", **handlers: Handler) -> Route:
    pieces = re.split(r"\{(\w+)\}", template)
    # re.split alternates literal text and placeholder names.
    pattern = "".join(re.escape(piece) if position % 2 == 0 else f"(?P<{piece}>[^/]+)" for position, piece in enumerate(pieces))
    return Route(re.compile(f"^{pattern}$"), dialect, azure_dated, dict(handlers), operation, template)


def _build_routes() -> List[Route]:
    routes: List[Route] = [
        _route("/v1/chat/completions", OPENAI, False, "ChatCompletions_Create", POST=create_chat_completion),
        _route("/v1/completions", OPENAI, False, "Completions_Create", POST=create_completion),
        _route("/v1/images/generations", OPENAI, False, "ImageGenerations_Create", POST=create_image),
        _route(
            "/openai/deployments/{deployment}/chat/completions", AZURE, True, "ChatCompletions_Create",
            POST=create_chat_completion,
        ),
        _route("/openai/deployments/{deployment}/completions", AZURE, True, "Completions_Create", POST=create_completion),
        _route(
            "/openai/deployments/{deployment}/images/generations", AZURE, True, "ImageGenerations_Create",
            POST=create_image,
        ),
        _route("/openai/v1/chat/completions", AZURE, False, "ChatCompletions_Create", POST=create_chat_completion),
        _route("/images/{image}.png", BLOB, False, GET=image_blob),
    ]
    for prefix, dialect, dated in (("/v1", OPENAI, False), ("/openai", AZURE, True), ("/openai/v1", AZURE, False)):
        routes += [
            _route(f"{prefix}/models", dialect, dated, "Models_List", GET=list_models),
            _route(f"{prefix}/models/{{model}}", dialect, dated, "Models_Get", GET=retrieve_model),
            _route(f"{prefix}/files", dialect, dated, "Files_Upload", POST=upload_file, GET=list_files),
            _route(f"{prefix}/files/{{file_id}}", dialect, dated, "Files_Get", GET=retrieve_file, DELETE=delete_file),
            _route(f"{prefix}/files/{{file_id}}/content", dialect, dated, "Files_GetContent", GET=download_file),
        ]
    routes += _batch_routes()
    return routes


def _batch_routes() -> List[Route]:
    """The Batch API, and deleting files, on OpenAI's, Azure's dated and Azure's v1 routes."""
    routes: List[Route] = []
    for prefix, dialect, dated in (("/v1", OPENAI, False), ("/openai", AZURE, True), ("/openai/v1", AZURE, False)):
        routes += [
            _route(f"{prefix}/batches", dialect, dated, "Batches_Create", POST=create_batch, GET=list_batches),
            _route(f"{prefix}/batches/{{batch_id}}", dialect, dated, "Batches_Get", GET=retrieve_batch),
            _route(f"{prefix}/batches/{{batch_id}}/cancel", dialect, dated, "Batches_Cancel", POST=cancel_batch),
        ]
    return routes


ROUTES = _build_routes()
# Routes are few; an exact-path table answers the fixed ones without trying every pattern.
_FIXED = {route.template: route for route in ROUTES if "{" not in route.template}


def match_route(path: str) -> Optional[Tuple[Route, Dict[str, str]]]:
    fixed = _FIXED.get(path)
    if fixed is not None:
        return fixed, {}
    for route in ROUTES:
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None
