"""Calls to the chat completions API shared by every action that talks to a chat model."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional

from ..errors import BadRequestError, ContentFilterError, InvalidResponseError, UnsupportedParameterError
from ..http import Pacer
from . import Step
from .unknown_model import naming_the_model

OPERATION = "chat/completions"

# The codes of "this model does not take that input": never retried, and named by input.
UNSUPPORTED_CODES = ("unsupported_parameter", "unsupported_value")
# The service names nested request fields its own way ("reasoning.effort", "messages[0].content").
SERVICE_PARAM_NAMES = {"reasoning.effort": "reasoning_effort", "reasoning_effort": "reasoning_effort"}
_ALLOWED_VALUES = re.compile(r"Supported values are:?\s*(.+?)\.?\s*$", re.IGNORECASE | re.DOTALL)


def chat_completion(step: Step, model: str, fields: Dict[str, Any], *, pacer: Optional[Pacer] = None,
                    input_names: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """POST one chat completion and return the parsed answer, with `request_id` added.

    Raises UnsupportedParameterError (naming the input, via `input_names` for request fields
    sent under another name) when the model refuses an input, ContentFilterError when every
    choice was cut by the output filter, InvalidResponseError when the answer lacks its choices,
    and a NotFoundError naming the `model` input when the service knows no such model or
    deployment."""
    connection = step.connection
    with naming_the_model(model, step.action.key):
        try:
            response = step.client.request("POST", connection.operation_url(OPERATION, model),
                                           json_body=connection.request_body(model, fields, OPERATION),
                                           action=step.action.key, pacer=pacer)
        except BadRequestError as error:
            if error.code in UNSUPPORTED_CODES:
                raise unsupported_parameter(error, model, input_names or {}) from None
            raise
    answer = checked_answer(response.json(), status=response.status, request_id=response.request_id,
                            attempts=response.attempts)
    answer["request_id"] = response.request_id
    return answer


def checked_answer(answer: Any, *, status: int, request_id: Optional[str], attempts: int) -> Dict[str, Any]:
    """A chat.completion body, or the typed error it stands for: InvalidResponseError without
    choices, ContentFilterError when every choice was cut by the output filter (keeping the billed
    answer's id, usage and prompt filter results). (Batch results deliver the same bodies inside
    their output lines.)"""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not all(_is_choice(choice) for choice in choices):
        raise InvalidResponseError("The chat answer has no choices with a message",
                                   status=status, code="missing_choices",
                                   request_id=request_id, attempts=attempts)
    if all(choice.get("finish_reason") == "content_filter" for choice in choices):
        # The output is billed, and the filter results say why: keep what the answer told.
        details = {"id": answer.get("id"), "usage": answer.get("usage"),
                   "content_filter_results": [choice.get("content_filter_results", {}) for choice in choices],
                   "partial_content": [choice["message"].get("content") for choice in choices]}
        if "prompt_filter_results" in answer:
            details["prompt_filter_results"] = answer["prompt_filter_results"]
        raise ContentFilterError(
            "The model's output was filtered by the content management policy",
            status=status, code="content_filter", request_id=request_id,
            attempts=attempts, details=details)
    return answer


def unsupported_parameter(error: BadRequestError, model: str,
                          input_names: Mapping[str, str]) -> UnsupportedParameterError:
    """The service's 400 as an error naming the input to change, and how."""
    param = error.param or ""
    field = input_names.get(param) or SERVICE_PARAM_NAMES.get(param) or _input_path(param)
    details = dict(error.details)
    allowed = allowed_values(error.message)
    if error.code == "unsupported_value" and allowed:
        details["allowed_values"] = allowed
        advice = f"set {field} to one of {', '.join(allowed)}"
    elif error.code == "unsupported_value":
        advice = f"change {field} or leave it unset"
    else:
        advice = f"leave {field} unset (at its default)"
    message = (f"{model!r} does not accept this {field}: {error.message} To run this step, {advice}.")
    return UnsupportedParameterError(message, field=field, status=error.status, code=error.code,
                                     request_id=error.request_id, param=error.param,
                                     error_type=error.error_type, details=details, attempts=error.attempts)


def allowed_values(message: str) -> List[str]:
    """The values listed in "Supported values are: 'none', 'low', and 'high'." ([] if none)."""
    found = _ALLOWED_VALUES.search(message or "")
    return re.findall(r"'([^']*)'", found.group(1)) if found else []


def _input_path(param: str) -> str:
    """"messages[0].content" -> "messages/0/content"."""
    return re.sub(r"\[(\d+)\]", r"/\1", param).replace(".", "/")


def _is_choice(choice: Any) -> bool:
    """A choice as the contract types it: an integer index, a message whose content is text or null."""
    if not (isinstance(choice, dict) and isinstance(choice.get("message"), dict)):
        return False
    index = choice.get("index", 0)
    content = choice["message"].get("content")
    return type(index) is int and (content is None or isinstance(content, str))


def user_messages(prompt: str, system: Optional[str] = None) -> List[Dict[str, str]]:
    """A one-turn conversation: the optional system message, then the prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


def first_content(answer: Dict[str, Any]) -> Optional[str]:
    """The text of the first choice (None for tool calls or refusals)."""
    return answer["choices"][0]["message"].get("content")
