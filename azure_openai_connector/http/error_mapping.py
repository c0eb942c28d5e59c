"""From a failed attempt to the typed error a caller acts on: error statuses and transport failures."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Iterable, Mapping, Tuple, Type

import requests

from .. import errors
from ..connection import transport_failure_message
from ..redaction import redact, redact_json
from .messages import request_id_of
from .retry import parse_retry_after

ERROR_TEXT_LIMIT = 1000
REDIRECT_LOCATION_LIMIT = 200

#: The error class of each status that has its own; 429, 3xx and 5xx are told apart below.
ERROR_CLASS_BY_STATUS: Dict[int, Type[errors.ApiError]] = {
    400: errors.BadRequestError, 401: errors.AuthenticationError, 403: errors.PermissionDeniedError,
    404: errors.NotFoundError, 422: errors.BadRequestError,
}

# Every spelling of a filter refusal (chat, Responses, Azure images, OpenAI images): one kind.
CONTENT_FILTER_CODES = frozenset({"content_filter", "contentFilter", "content_policy_violation",
                                  "moderation_blocked"})


def error_from_response(status: int, headers: Mapping[str, str], content: bytes, *, attempts: int,
                        secrets: Iterable[str] = (),
                        wall_clock: Callable[[], float] = time.time) -> errors.ApiError:
    """The typed error for an error status, with code, message and request ID from the body
    (`wall_clock` dates a 429's `retry-after`; the client passes its own)."""
    secrets = tuple(secrets)
    body: Any = None
    try:
        body = json.loads(content) if content else None
    except (ValueError, RecursionError):
        pass
    # Every field the error carries comes from the body and may echo a key: hide them all here.
    body = redact_json(body, secrets) if isinstance(body, dict) else body
    payload = body.get("error") if isinstance(body, dict) else None
    if isinstance(payload, dict):
        message = str(payload.get("message") or f"HTTP {status}")
        code = payload.get("code")
        error_type = payload.get("type")
        param = payload.get("param")
        inner = payload.get("innererror") or payload.get("inner_error") or {}
    else:
        text = content[:ERROR_TEXT_LIMIT].decode("utf-8", "replace").strip()
        message = text or f"HTTP {status}"
        code = error_type = param = None
        inner = {}
    code = None if code is None else str(code)
    message = redact(message[:ERROR_TEXT_LIMIT], secrets)
    request_id = request_id_of(headers)
    common = dict(status=status, code=code,
                  request_id=None if request_id is None else redact(request_id, secrets),
                  param=None if param is None else str(param),
                  error_type=None if error_type is None else str(error_type),
                  details=_filter_details(inner), attempts=attempts)
    if isinstance(payload, dict) and isinstance(payload.get("content_filters"), list):
        common["details"]["content_filters"] = payload["content_filters"]  # Azure Responses: no innererror
    is_content_filter = code in CONTENT_FILTER_CODES or (
        isinstance(inner, dict) and inner.get("code") == "ResponsibleAIPolicyViolation")
    if is_content_filter:
        return errors.ContentFilterError(message, **common)
    if status == 429 and "insufficient_quota" in (code, error_type):
        return errors.QuotaExceededError(message, **common)
    if status == 429:
        return errors.RateLimitError(message, retry_after=parse_retry_after(headers, wall_clock=wall_clock),
                                     **common)
    error_class = ERROR_CLASS_BY_STATUS.get(status)
    if error_class is not None:
        return error_class(message, **common)
    if 300 <= status < 400:
        location = redact(headers.get("location", ""), secrets)[:REDIRECT_LOCATION_LIMIT]
        return errors.RedirectNotFollowedError(
            f"The service redirected (HTTP {status}) to {location!r}; "
            "redirects are never followed, so credentials stay on the configured host", **common)
    return (errors.ServerError if status >= 500 else errors.ApiError)(message, **common)


def _filter_details(inner: Any) -> Dict[str, Any]:
    """What Azure's inner error says about a content-filter refusal."""
    details: Dict[str, Any] = {}
    if isinstance(inner, dict):
        filter_results = inner.get("content_filter_result") or inner.get("content_filter_results")
        if filter_results:
            details["content_filter_results"] = filter_results
        if inner.get("revised_prompt"):
            details["revised_prompt"] = inner["revised_prompt"]
    return details


def transport_error(exc: requests.RequestException, attempts: int,
                    secrets: Tuple[str, ...]) -> errors.ConnectorError:
    """Our error for a request that got no answer: a timeout, a connection failure, or neither."""
    detail = redact(f"{type(exc).__name__}: {exc}", secrets)[:ERROR_TEXT_LIMIT]
    if isinstance(exc, requests.Timeout):
        return errors.ApiTimeoutError(f"The service did not answer in time ({detail})", attempts=attempts)
    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)):
        url = exc.request.url if getattr(exc, "request", None) is not None else None
        return errors.ApiConnectionError(
            redact(transport_failure_message(exc, url), secrets)[:ERROR_TEXT_LIMIT], attempts=attempts)
    return errors.ConnectorError(f"The request could not be sent ({detail})")
