"""Calls to the chat completions API shared by every action that talks to a chat model."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..errors import ContentFilterError, InvalidResponseError
from ..http import Pacer
from . import Step
from .unknown_model import naming_the_model

OPERATION = "chat/completions"


def chat_completion(step: Step, model: str, fields: Dict[str, Any], *,
                    pacer: Optional[Pacer] = None) -> Dict[str, Any]:
    """POST one chat completion and return the parsed answer, with `request_id` added.

    Raises ContentFilterError when every choice was cut by the output filter, InvalidResponseError
    when the answer lacks its choices, and a NotFoundError naming the `model` input when the
    service knows no such model or deployment."""
    connection = step.connection
    with naming_the_model(model, step.action.key):
        response = step.client.request("POST", connection.operation_url(OPERATION, model),
                                       json_body=connection.request_body(model, fields, OPERATION),
                                       action=step.action.key, pacer=pacer)
    answer = checked_answer(response.json(), status=response.status, request_id=response.request_id,
                            attempts=response.attempts)
    answer["request_id"] = response.request_id
    return answer


def checked_answer(answer: Any, *, status: int, request_id: Optional[str], attempts: int) -> Dict[str, Any]:
    """A chat.completion body, or the typed error it stands for: InvalidResponseError without
    choices, ContentFilterError when every choice was cut by the output filter. (Batch results
    deliver the same bodies inside their output lines.)"""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not all(
            isinstance(choice, dict) and isinstance(choice.get("message"), dict) for choice in choices):
        raise InvalidResponseError("The chat answer has no choices with a message",
                                   status=status, code="missing_choices",
                                   request_id=request_id, attempts=attempts)
    if all(choice.get("finish_reason") == "content_filter" for choice in choices):
        raise ContentFilterError(
            "The model's output was filtered by the content management policy",
            status=status, code="content_filter", request_id=request_id,
            attempts=attempts,
            details={"content_filter_results": [choice.get("content_filter_results", {})
                                                for choice in choices],
                     "partial_content": [choice["message"].get("content") for choice in choices]})
    return answer


def user_messages(prompt: str, system: Optional[str] = None) -> List[Dict[str, str]]:
    """A one-turn conversation: the optional system message, then the prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


def first_content(answer: Dict[str, Any]) -> Optional[str]:
    """The text of the first choice (None for tool calls or refusals)."""
    return answer["choices"][0]["message"].get("content")
