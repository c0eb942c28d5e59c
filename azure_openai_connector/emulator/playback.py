"""Turns a scripted Fault into the misbehaving answer, in the dialect of the route it hit."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from typing import Callable, Dict

from . import errors, responses
from .errors import AZURE, OPENAI
from .faults import Fault
from .recording import RecordedRequest
from .reply import SEND_NOTHING, SEND_TRUNCATED, Reply, json_reply
from .routes import BLOB, dialect_for, match_route, presented_secret

MALFORMED_BODY = b'{"id": "chatcmpl-'


def play(fault: Fault, request: RecordedRequest, normal_answer: Callable[[], Reply]) -> Reply:
    """The answer `request` gets under `fault`; `normal_answer` gives the well-behaved one."""
    dialect = dialect_for(request.path)
    if dialect == BLOB:
        dialect = OPENAI
    kind = fault.kind
    if kind == "slow":
        return normal_answer()
    if kind == "drop":
        return Reply(0, delivery=SEND_NOTHING)
    if kind == "drop_mid_body":
        answer = normal_answer()
        answer.delivery = SEND_TRUNCATED
        return answer
    if kind == "malformed":
        return Reply(200, MALFORMED_BODY)
    if kind == "content_filter_output":
        return _rewrite_completion(normal_answer(), lambda body: responses.filter_output(body, dialect == AZURE))
    if kind == "content_filter_not_run":
        return _rewrite_completion(normal_answer(), responses.filter_not_run)
    if kind == "invalid_tool_arguments":
        return _rewrite_completion(normal_answer(), responses.break_tool_arguments)
    if kind == "missing_choices":
        return _rewrite_completion(normal_answer(), _without_choices)
    if kind == "redirect":
        return Reply(int(fault.status_code or 307), b"", headers={"location": str(fault.location)})
    if kind == "rate_limit":
        return _rate_limit(fault, request, dialect)
    if kind == "insufficient_quota":
        return json_reply(429, errors.quota_body(dialect))
    if kind == "unauthorized":
        return json_reply(401, errors.unauthorized_body(dialect, presented_secret(request, dialect)))
    if kind == "not_found":
        return json_reply(404, errors.not_found_body(dialect, _model_named(request)))
    if kind == "bad_request":
        refusal = errors.ServiceRefusal(400, fault.message or "Invalid request.", param=fault.param, code=fault.code)
        return json_reply(400, refusal.body(dialect))
    if kind == "content_filter_prompt":
        return json_reply(400, errors.content_filter_prompt_body(fault.spec_shape))
    if kind == "status":
        return _status(fault, request, dialect)
    raise ValueError(f"unknown fault kind {kind!r}")


def _status(fault: Fault, request: RecordedRequest, dialect: str) -> Reply:
    status = int(fault.status_code or 500)
    if status == 401 and fault.message is None:
        body = errors.unauthorized_body(dialect, presented_secret(request, dialect))
    elif status == 429 and fault.message is None:
        body = errors.rate_limit_body(dialect, "rate_limit_exceeded", 1, _operation(request), request.query.get("api-version"))
    else:
        body = errors.status_body(dialect, status, fault.message)
    return json_reply(status, body, dict(fault.extra_headers))


def _rate_limit(fault: Fault, request: RecordedRequest, dialect: str) -> Reply:
    headers: Dict[str, str] = {"x-ratelimit-remaining-requests": "0"}
    if fault.retry_after_date:
        seconds = float(fault.retry_after) if fault.retry_after is not None else 1.0
        headers["retry-after"] = formatdate(time.time() + seconds, usegmt=True)
    elif fault.retry_after is not None:
        headers["retry-after"] = str(fault.retry_after)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    seconds_quoted = errors.rate_limit_seconds(fault.retry_after, fault.retry_after_ms)
    body = errors.rate_limit_body(
        dialect, fault.code or "rate_limit_exceeded", seconds_quoted, _operation(request), request.query.get("api-version")
    )
    return json_reply(429, body, headers)


def _operation(request: RecordedRequest) -> str:
    found = match_route(request.path)
    return found[0].operation if found else "the"


def _model_named(request: RecordedRequest) -> str:
    model = request.json.get("model") if isinstance(request.json, dict) else None
    return f"The model `{model}`" if isinstance(model, str) else "The requested resource"


def _rewrite_completion(answer: Reply, rewrite: Callable[[dict], dict]) -> Reply:
    """Apply `rewrite` to a successful JSON completion; anything else passes through."""
    if answer.status != 200 or not answer.content_type.startswith("application/json"):
        return answer
    body = json.loads(answer.body)
    if not isinstance(body, dict) or "choices" not in body:
        return answer
    return json_reply(200, rewrite(body), answer.headers)


def _without_choices(body: dict) -> dict:
    body.pop("choices", None)
    return body

