"""Create Chat Completion: one chat completions request, the API's answer returned whole."""

from __future__ import annotations

from typing import Any, Dict, List

from ..connection import Connection
from ..manifest import Action, ValidatedInputs
from . import Step
from .chat_api import chat_completion, first_content

# Sent only when the user chose them (a value other than the manifest default, which is the API's
# own): reasoning models refuse sampling parameters even at their default values.
OPTIONAL_FIELDS = ("temperature", "top_p", "n", "presence_penalty", "frequency_penalty",
                   "max_completion_tokens", "stop", "seed")
# Azure added the developer role in 2024-12-01-preview; older dated versions refuse it.
AZURE_FIRST_VERSION_WITH_DEVELOPER_ROLE = "2024-12-01"


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Refuse what the connection's API version cannot take."""
    if not connection.deployment_in_path or connection.api_version >= AZURE_FIRST_VERSION_WITH_DEVELOPER_ROLE:
        return []
    return [{"path": f"messages/{index}/role",
             "message": f"'developer' needs Azure api_version {AZURE_FIRST_VERSION_WITH_DEVELOPER_ROLE}"
                        f"-preview or newer (this connection uses {connection.api_version}); use 'system'"}
            for index, message in enumerate(inputs["messages"]) if message["role"] == "developer"]


def run(step: Step, inputs: ValidatedInputs) -> Dict[str, Any]:
    fields: Dict[str, Any] = {"messages": inputs["messages"]}
    for name in OPTIONAL_FIELDS:
        if name in inputs.given:
            fields[name] = inputs[name]
    if "response_format" in inputs.given:
        fields["response_format"] = {"type": inputs["response_format"]}
    answer = chat_completion(step, inputs["model"], fields)
    first = answer["choices"][0]
    answer["content"] = first_content(answer)
    answer["finish_reason"] = first.get("finish_reason")
    return answer
