"""Create Multiple Chat Completions: one independent completion per prompt, sent concurrently
(chat API) or in one legacy completions request, with results and typed errors in input order.

On the legacy completions API all prompts share one request, so the service reports one usage
for the batch: it goes to `totals` and each item's `usage` stays None.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..connection import Connection
from ..errors import ConnectorError, ContentFilterError, InvalidResponseError, answer_error
from ..http import Response
from ..manifest import Action, ValidatedInputs
from . import Step
from .batch import map_in_order, total_usage
from .chat_api import chat_completion, first_content, user_messages
from .pacing import for_request
from .pool_sizing import connections_in_use
from .unknown_model import naming_the_model
from .chat_output import parsed_output
from .chat_request import (azure_version_problems, family_problems, max_tokens_field, response_format_field,
                           response_format_problems, was_set)

COMPLETIONS = "completions"

# OpenAI's completion-only models; a request for them on the chat API is refused. Azure
# deployment names are the user's own, so there the `api` input decides.
LEGACY_COMPLETION_MODEL = re.compile(
    r"^(gpt-3\.5-turbo-instruct(-.*)?|davinci-002|babbage-002|text-(davinci|curie|babbage|ada)-.*"
    r"|davinci|curie|babbage|ada)$", re.IGNORECASE)


def uses_completions_api(inputs: Mapping[str, Any], connection: Connection) -> bool:
    """Whether the prompts go to the legacy completions API instead of chat completions."""
    if inputs["api"] == "completions":
        return True
    return connection.is_openai and bool(LEGACY_COMPLETION_MODEL.match(inputs["model"]))


# Chat-only inputs: the legacy completions API has no roles, formats or reasoning.
CHAT_ONLY = ("system", "response_format", "reasoning_effort")


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Refuse chat-only inputs where the completions API will be used, both token-limit names at
    once, and (chat) what the model's family refuses or a json_schema format breaks."""
    form = action.inputs
    problems: List[Dict[str, str]] = []
    if "max_tokens" in inputs and "max_completion_tokens" in inputs:
        problems.append({"path": "max_tokens", "message": "is the old name of max_completion_tokens; set only one"})
    if uses_completions_api(inputs, connection):
        for name in CHAT_ONLY:
            if was_set(form, inputs, name):
                problems.append({"path": name,
                                 "message": f"the completions API (used for {inputs['model']!r} here) has no "
                                            f"{name}; leave it unset, or use a chat model with api 'chat'"})
        return problems
    # max_tokens here is only the old name of max_completion_tokens, sent under the new name.
    family = [problem for problem in family_problems(form, inputs) if problem["path"] != "max_tokens"]
    return problems + family + azure_version_problems(form, inputs, connection) + response_format_problems(inputs)


def run(step: Step, inputs: ValidatedInputs) -> Dict[str, Any]:
    if uses_completions_api(inputs, step.connection):
        results, usage = _run_completions(step, inputs)
    else:
        results = _run_chat(step, inputs)
        usage = total_usage(item["usage"] for item in results)
    failed = sum(1 for item in results if item["error"] is not None)
    return {"model": inputs["model"], "results": results,
            "totals": {"succeeded": len(results) - failed, "failed": failed, **usage}}


def _run_chat(step: Step, inputs: ValidatedInputs) -> List[Dict[str, Any]]:
    form = step.action.inputs
    token_field = max_tokens_field(step.connection)
    shared_fields = _sampling_fields(inputs, max_tokens_field=token_field)
    if "reasoning_effort" in inputs:
        shared_fields["reasoning_effort"] = inputs["reasoning_effort"]
    response_format = response_format_field(form, inputs)
    if response_format is not None:
        shared_fields["response_format"] = response_format
    concurrency = min(inputs["max_concurrency"], len(inputs["prompts"]))
    pacer = step.new_pacer(inputs["max_concurrency"], inputs["model"])
    input_names = {token_field: "max_tokens" if "max_tokens" in inputs else "max_completion_tokens"}

    def complete(prompt: str) -> Dict[str, Any]:
        fields = {"messages": user_messages(prompt, inputs.get("system")), **shared_fields}
        return chat_completion(step, inputs["model"], fields, pacer=for_request(pacer, fields),
                               input_names=input_names)

    with connections_in_use(step.client, concurrency):
        outcomes = map_in_order(inputs["prompts"], complete, concurrency)
    results = []
    for index, (prompt, (answer, error)) in enumerate(zip(inputs["prompts"], outcomes)):
        if error is not None:
            results.append(_failed_item(index, prompt, error))
        else:
            first = answer["choices"][0]
            parsed, parse_errors = parsed_output(first_content(answer), response_format)
            results.append({**_item(index, prompt, first_content(answer), first.get("finish_reason"),
                                    answer.get("usage")),
                            "parsed": parsed, "parse_errors": parse_errors,
                            "content_filter_results": first.get("content_filter_results")})
    return results


def _run_completions(step: Step, inputs: ValidatedInputs) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    prompts: List[str] = inputs["prompts"]
    fields = {"prompt": prompts, **_sampling_fields(inputs, max_tokens_field="max_tokens")}
    connection = step.connection
    try:
        with naming_the_model(inputs["model"], step.action.key):
            response = step.client.request(
                "POST", connection.operation_url(COMPLETIONS, inputs["model"]),
                json_body=connection.request_body(inputs["model"], fields, COMPLETIONS),
                action=step.action.key)
        answer = response.json()
        results = completion_results(answer, prompts, response)
    except ConnectorError as error:
        # One request carried every prompt, so its failure is every prompt's failure.
        return [_failed_item(index, prompt, error) for index, prompt in enumerate(prompts)], total_usage([])
    return results, total_usage([answer.get("usage")])


def completion_results(answer: Any, prompts: List[str], response: Response) -> List[Dict[str, Any]]:
    """One result per prompt from a text_completion answer, matched by `choices[].index`
    (with n=1 the index is the prompt's position)."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list):
        raise _invalid(response, "The completions answer has no choices", "missing_choices")
    by_index = {choice.get("index"): choice for choice in choices if isinstance(choice, dict)}
    results = []
    for index, prompt in enumerate(prompts):
        choice = by_index.get(index)
        if choice is None or not isinstance(choice.get("text"), str):
            results.append(_failed_item(index, prompt, _invalid(
                response, f"The completions answer has no text for prompt {index}", "missing_choice")))
        elif choice.get("finish_reason") == "content_filter":
            results.append(_failed_item(index, prompt, answer_error(
                ContentFilterError, response, "The model's output was filtered by the content management policy",
                code="content_filter",
                details={"content_filter_results": choice.get("content_filter_results", {}),
                         "partial_content": choice["text"]})))
        else:
            results.append({**_item(index, prompt, choice["text"], choice.get("finish_reason"), None),
                            "content_filter_results": choice.get("content_filter_results")})
    return results


def _sampling_fields(inputs: ValidatedInputs, *, max_tokens_field: str) -> Dict[str, Any]:
    fields: Dict[str, Any] = {}
    # Reasoning models refuse temperature even at its default value, so send it only when chosen.
    if "temperature" in inputs.given:
        fields["temperature"] = inputs["temperature"]
    for name in ("max_completion_tokens", "max_tokens"):
        if name in inputs:
            fields[max_tokens_field] = inputs[name]
    return fields


def _item(index: int, prompt: str, content: Optional[str], finish_reason: Optional[str],
          usage: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    return {"index": index, "prompt": prompt, "content": content, "finish_reason": finish_reason,
            "usage": usage if isinstance(usage, dict) else None, "error": None, "parsed": None,
            "parse_errors": [], "content_filter_results": None}


def _failed_item(index: int, prompt: str, error: Exception) -> Dict[str, Any]:
    if not isinstance(error, ConnectorError):
        raise error  # a bug, not a service answer: let it surface
    return {"index": index, "prompt": prompt, "content": None, "finish_reason": None,
            "usage": None, "error": error.to_dict(), "parsed": None, "parse_errors": [],
            "content_filter_results": None}


def _invalid(response: Response, message: str, code: str) -> InvalidResponseError:
    return answer_error(InvalidResponseError, response, message, code=code)
