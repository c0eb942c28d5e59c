"""Create Image: one images/generations request, or for DALL-E 3 one request per image sent at once,
with every image (and every failed request) gathered into one result. gpt-image answers keep
everything the API returned (usage, size, quality, background, output format)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Sequence, Union

from ..connection import Connection
from ..errors import ConnectorError
from ..manifest import Action
from . import Step
from .unknown_model import naming_the_model
from .image_api import GPT_IMAGE_OPTIONS, gpt_image_problems, image_answer, images_result

OPERATION = "images/generations"
SENT_WHEN_SET = ("quality", "style", "response_format", *GPT_IMAGE_OPTIONS, "moderation")
# The model whose manifest rule an Azure dated-API deployment follows when its name reveals no
# model: DALL-E 3 is the only image model of the 2024-10-21 API.
AZURE_DEFAULT_IMAGE_MODEL = "dall-e-3"
# DALL-E 3 refuses n > 1, so the connector asks for its images one request each.
ONE_IMAGE_PER_REQUEST = re.compile(r"^dall-e-3")
GPT_IMAGE = re.compile(r"^gpt-image")
# gpt-image arrived on Azure with 2025-04-01-preview; dated versions before it cannot serve it.
AZURE_FIRST_VERSION_WITH_GPT_IMAGE = "2025-04-01"
# The rule an Azure v1-API deployment follows when its name reveals no model: the v1 API serves
# image generation (in preview) for the gpt-image models only, DALL-E having retired.
AZURE_V1_IMAGE_MODEL = "gpt-image-2"


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Refuse what the connection's API cannot take: Azure dated-API deployments other than
    gpt-image ones follow the manifest's DALL-E 3 rule (as well as their name's own rule);
    gpt-image needs a newer Azure api-version; Azure v1-API deployments whose names reveal no
    model follow the gpt-image rule; gpt-image-2's size limits and Azure's output formats hold
    everywhere."""
    problems = gpt_image_problems(inputs, connection)
    model = inputs["model"]
    if connection.uses_v1_api:
        if rule_model(model, connection, action) == model:
            return problems
        return problems + action.inputs.validator.errors({**inputs, "model": AZURE_V1_IMAGE_MODEL})
    if not connection.deployment_in_path:
        return problems
    if GPT_IMAGE.search(model) and connection.api_version[:10] < AZURE_FIRST_VERSION_WITH_GPT_IMAGE:
        needed = f"{AZURE_FIRST_VERSION_WITH_GPT_IMAGE}-preview"
        return problems + [{"path": "model", "message": f"gpt-image deployments need Azure api_version "
                                                        f"{needed} or newer (this connection uses "
                                                        f"{connection.api_version})"}]
    if rule_model(model, connection, action) == model:
        return problems
    return problems + action.inputs.validator.errors({**inputs, "model": AZURE_DEFAULT_IMAGE_MODEL})


def rule_model(model: str, connection: Connection, action: Action) -> str:
    """The model whose rules apply: the model itself, or DALL-E 3 for an Azure dated-API deployment
    that is not a gpt-image one. Besides gpt-image (preview versions), DALL-E 3 is the only image
    model that API serves (its spec: n at most 1, three sizes), so a deployment named for another
    model, dall-e-2 included, follows the DALL-E 3 rules too, on top of its own name's rules.
    On Azure's v1 API a deployment whose name matches no model rule follows the gpt-image one."""
    if connection.uses_v1_api:
        named = any(re.search(pattern, model) for pattern in model_rule_patterns(action))
        return model if named else AZURE_V1_IMAGE_MODEL
    if not connection.deployment_in_path or GPT_IMAGE.search(model) or (
            ONE_IMAGE_PER_REQUEST.search(model)
            and any(re.search(pattern, model) for pattern in model_rule_patterns(action))):
        return model
    return AZURE_DEFAULT_IMAGE_MODEL


def model_rule_patterns(action: Action) -> List[str]:
    """The `model` patterns of the manifest's per-model `if/then` rules."""
    return [rule["if"]["properties"]["model"]["pattern"]
            for rule in action.inputs.schema.get("allOf", ())
            if "pattern" in rule.get("if", {}).get("properties", {}).get("model", {})]


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    model = inputs["model"]
    count = inputs["n"]
    if count > 1 and ONE_IMAGE_PER_REQUEST.search(rule_model(model, step.connection, step.action)):
        outcomes = _send_concurrently(step, inputs, count)
    else:
        outcomes = [_send(step, inputs, count)]
    return _gather(outcomes)


def request_fields(inputs: Dict[str, Any], count: int) -> Dict[str, Any]:
    """The body fields (without `model`): options with no manifest default only when set."""
    fields: Dict[str, Any] = {"prompt": inputs["prompt"], "size": inputs["size"], "n": count}
    for name in SENT_WHEN_SET:
        if name in inputs:
            fields[name] = inputs[name]
    return fields


def _send(step: Step, inputs: Dict[str, Any], count: int) -> Dict[str, Any]:
    connection = step.connection
    model = inputs["model"]
    # On Azure's v1 API, image generation is served in preview only: operation_url says so.
    with naming_the_model(model, step.action.key):
        response = step.client.request(
            "POST", connection.operation_url(OPERATION, model),
            json_body=connection.request_body(model, request_fields(inputs, count), OPERATION),
            action=step.action.key)
    return image_answer(response)


def _send_concurrently(step: Step, inputs: Dict[str, Any],
                       count: int) -> List[Union[Dict[str, Any], ConnectorError]]:
    def one_image(_: int) -> Union[Dict[str, Any], ConnectorError]:
        try:
            return _send(step, inputs, 1)
        except ConnectorError as error:
            return error

    # count is at most the manifest's maximum n, so one thread per request stays small.
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="create-image") as pool:
        return list(pool.map(one_image, range(count)))


def _gather(outcomes: Sequence[Union[Dict[str, Any], ConnectorError]]) -> Dict[str, Any]:
    """One result from every request's answer, in request order; failures become `errors`."""
    answers = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    failures = [(index, outcome) for index, outcome in enumerate(outcomes)
                if isinstance(outcome, ConnectorError)]
    if not answers:
        raise failures[0][1]
    result = images_result(answers)
    result["errors"] = [{"index": index, "error": error.to_dict()} for index, error in failures]
    return result
