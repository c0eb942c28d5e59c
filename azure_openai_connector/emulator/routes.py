"""The emulated service: which paths exist, who may call them, and what a well-behaved answer is."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from .call import Call, Handler
from .errors import AZURE, OPENAI, ServiceRefusal, azure_error, not_found_body, openai_error, unauthorized_body
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
from .embeddings import create_embeddings
from .images import create_image, edit_image, image_blob
from .recording import RecordedRequest
from .reply import JSON_TYPE, Reply, json_reply
from .responses_api import ResponseStore, cancel_response, create_response, get_response
from .tokens import TokenIssuer

BLOB = "blob"  # image downloads: they stand for a storage URL, so no auth and no API headers

# Dated data-plane versions the service answers (a made-up date gets 400, as on the live service).
AZURE_DATED_VERSIONS = frozenset({
    "2022-12-01", "2023-05-15", "2024-02-01", "2024-06-01", "2024-10-21",
    "2024-12-01-preview", "2025-01-01-preview", "2025-02-01-preview", "2025-03-01-preview",
    "2025-04-01-preview",
})
# The v1 API's versions (its spec's AzureAIFoundryModelsApiVersion): v1 is also the default.
AZURE_V1_VERSIONS = ("v1", "preview")
AZURE_PREVIEW = "preview"
# What Azure OpenAI answers a missing, unknown or expired Entra ID token.
AZURE_TOKEN_REFUSED_MESSAGE = ("Unauthorized. Access token is missing, invalid, audience is incorrect "
                               "(https://cognitiveservices.azure.com), or have expired.")


@dataclass
class Route:
    pattern: "re.Pattern[str]"
    dialect: str
    azure_dated: bool
    handlers: Dict[str, Handler]
    operation: str = "the"
    template: str = ""
    #: Runs a model: the deployment (Azure) or model (OpenAI) must be one the service knows.
    inference: bool = False
    #: On Azure's v1 API only with api-version=preview (absent from the v1 GA spec).
    preview_only: bool = False

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
    #: Known deployment/model names and the model each serves; None accepts any name.
    deployments: Optional[Dict[str, str]] = None
    deployment_models: Dict[str, str] = field(default_factory=dict)
    batches: BatchStore = field(init=False)
    responses: ResponseStore = field(default_factory=ResponseStore)
    tokens: TokenIssuer = field(default_factory=TokenIssuer)

    def __post_init__(self) -> None:
        self.batches = BatchStore(self.files)

    def answer(self, request: RecordedRequest, json_ok: bool, serial: int) -> Reply:
        dialect = dialect_for(request.path)
        try:
            return self._answer(request, json_ok, serial, dialect)
        except ServiceRefusal as refusal:
            return json_reply(refusal.status, refusal.body(dialect if dialect != BLOB else OPENAI))

    def _answer(self, request: RecordedRequest, json_ok: bool, serial: int, dialect: str) -> Reply:
        issued = self.tokens.answer(request, self.base_url)
        if issued is not None:
            return issued
        found = match_route(request.path)
        if found is None:
            return route_not_found(request, dialect)
        if dialect != BLOB and not self.authorized(request, dialect):
            if dialect == AZURE and _bearer_token(request) is not None:
                return json_reply(401, azure_error("401", AZURE_TOKEN_REFUSED_MESSAGE))
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
            refusal = check_api_version(request.query.get("api-version"), required=route.azure_dated,
                                        preview_only=route.preview_only)
            if refusal is not None:
                return refusal
        if route.inference:
            refusal = self.check_deployment(request, params, dialect, route.azure_dated)
            if refusal is not None:
                return refusal
        call = Call(request, json_ok, dialect, route.azure_dated, params, serial, self.base_url, self.files,
                    self.batches, self.deployments, responses=self.responses,
                    deployment_models=self.deployment_models)
        return handler(call)

    def check_deployment(self, request: RecordedRequest, params: Dict[str, str], dialect: str,
                         azure_dated: bool) -> Optional[Reply]:
        """404 for a deployment (Azure: in the path, or v1's body `model`) or model (OpenAI) the
        service does not know; a missing `model` is left to the handler's validation."""
        if self.deployments is None:
            return None
        if azure_dated:
            name: Any = params.get("deployment")
        else:
            name = request.json.get("model") if isinstance(request.json, dict) else None
            if not isinstance(name, str):
                return None
        if name in self.deployments:
            return None
        if dialect == AZURE:
            return json_reply(404, not_found_body(AZURE))
        return json_reply(404, openai_error(
            f"The model `{name}` does not exist or you do not have access to it.",
            "invalid_request_error", code="model_not_found"))

    def authorized(self, request: RecordedRequest, dialect: str) -> bool:
        bearer = _bearer_token(request)
        if dialect == OPENAI:
            return bearer == self.api_key
        return request.headers.get("api-key") == self.api_key or (
            bearer is not None and (bearer == self.api_key or bearer in self.bearer_tokens
                                    or self.tokens.is_valid(bearer))
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


def check_api_version(version: Optional[str], required: bool, preview_only: bool = False) -> Optional[Reply]:
    """The live service answers a missing api-version with 404 and an unknown one with 400. Dated
    routes take the dated versions; v1 routes take v1 (the default) or preview, and a route the v1
    API has in preview only does not exist without preview."""
    known = AZURE_DATED_VERSIONS if required else AZURE_V1_VERSIONS
    if version is not None and version not in known:
        return json_reply(400, azure_error("BadRequest", "API version not supported"))
    if (version is None and required) or (preview_only and version != AZURE_PREVIEW):
        return json_reply(404, azure_error("404", "Resource not found"))
    return None


def typed_for_azure_v1(path: str, reply: Reply) -> Reply:
    """Azure's v1 API types its errors `"type": "error"` (the v1 spec's AzureErrorResponse), where
    the dated API carries OpenAI-style types such as invalid_request_error."""
    if reply.status < 400 or not path.startswith("/openai/v1/") or reply.content_type != JSON_TYPE:
        return reply
    try:
        body = json.loads(reply.body)
    except ValueError:
        return reply
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or "type" not in error or error["type"] == "error":
        return reply
    error["type"] = "error"
    retyped = json_reply(reply.status, body, reply.headers)
    return dataclasses.replace(reply, body=retyped.body)


def route_not_found(request: RecordedRequest, dialect: str) -> Reply:
    if dialect == AZURE:
        return json_reply(404, azure_error("404", "Resource not found"))
    return json_reply(
        404, openai_error(f"Invalid URL ({request.method} {request.path})", "invalid_request_error")
    )


# --- the route table ----------------------------------------------------------


def _route(template: str, dialect: str, azure_dated: bool, operation: str = "the", *, inference: bool = False,
           preview_only: bool = False, **handlers: Handler) -> Route:
    pieces = re.split(r"\{(\w+)\}", template)
    # re.split alternates literal text and placeholder names.
    pattern = "".join(re.escape(piece) if position % 2 == 0 else f"(?P<{piece}>[^/]+)" for position, piece in enumerate(pieces))
    return Route(re.compile(f"^{pattern}$"), dialect, azure_dated, dict(handlers), operation, template,
                 inference, preview_only)


def _build_routes() -> List[Route]:
    routes: List[Route] = [_route("/images/{image}.png", BLOB, False, GET=image_blob)]
    # Inference on OpenAI (/v1), Azure's dated API (the deployment in the path) and Azure's v1 API
    # (the deployment as the body's `model`; image generation there in preview only).
    for prefix, dialect, dated in (("/v1", OPENAI, False), ("/openai/deployments/{deployment}", AZURE, True),
                                   ("/openai/v1", AZURE, False)):
        routes += [
            _route(f"{prefix}/chat/completions", dialect, dated, "ChatCompletions_Create", inference=True,
                   POST=create_chat_completion),
            _route(f"{prefix}/completions", dialect, dated, "Completions_Create", inference=True,
                   POST=create_completion),
            _route(f"{prefix}/images/generations", dialect, dated, "ImageGenerations_Create", inference=True,
                   preview_only=dialect == AZURE and not dated, POST=create_image),
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
    return routes + _responses_embeddings_and_edit_routes()


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


def _responses_embeddings_and_edit_routes() -> List[Route]:
    """Responses (Azure's dated API serves them at /openai/responses, no deployment in the path),
    embeddings and image edits, on the OpenAI, Azure v1 and Azure dated routes."""
    routes: List[Route] = []
    for prefix, dialect, dated in (("/v1", OPENAI, False), ("/openai/v1", AZURE, False), ("/openai", AZURE, True)):
        routes += [
            _route(f"{prefix}/responses", dialect, dated, "Responses_Create", POST=create_response),
            _route(f"{prefix}/responses/{{response_id}}", dialect, dated, "Responses_Get", GET=get_response),
            _route(f"{prefix}/responses/{{response_id}}/cancel", dialect, dated, "Responses_Cancel",
                   POST=cancel_response),
        ]
    for prefix, dialect, dated in (("/v1", OPENAI, False), ("/openai/v1", AZURE, False),
                                   ("/openai/deployments/{deployment}", AZURE, True)):
        routes += [
            _route(f"{prefix}/embeddings", dialect, dated, "Embeddings_Create", POST=create_embeddings),
            _route(f"{prefix}/images/edits", dialect, dated, "ImageEdits_Create",
                   preview_only=dialect == AZURE and not dated, POST=edit_image),
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
