"""Create Chat Completion: one chat completions request, the API's answer returned whole, plus
flat conveniences (content, tool calls with parsed arguments, structured output parsed and checked)."""

from __future__ import annotations

from typing import Any, Dict, List

from ..connection import Connection
from ..manifest import Action, ValidatedInputs
from . import Step
from .chat_api import chat_completion
from .chat_output import conveniences
from .chat_request import (chat_problems, images_problems, max_tokens_field, message_problems,
                           response_format_field, sampling_fields, with_images)


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Every cross-field rule (roles, tools, schemas, model family, API version), before sending."""
    return (message_problems(inputs["messages"]) + images_problems(inputs)
            + chat_problems(action.inputs, inputs, connection))


def run(step: Step, inputs: ValidatedInputs) -> Dict[str, Any]:
    """Send the conversation (images attached) with the options the user set; return the answer
    with its conveniences."""
    form = step.action.inputs
    messages = inputs["messages"]
    if inputs.get("images"):
        messages = with_images(messages, inputs["images"], inputs.get("image_detail"))
    fields: Dict[str, Any] = {"messages": messages, **sampling_fields(form, inputs, step.connection)}
    answer = chat_completion(step, inputs["model"], fields,
                             input_names={max_tokens_field(step.connection): "max_completion_tokens"})
    answer.update(conveniences(answer["choices"][0], response_format_field(form, inputs)))
    return answer
