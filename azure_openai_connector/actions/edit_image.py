"""Edit Image: one multipart images/edits request with every input image as a repeated `image[]`
part (one image: `image`) and the optional mask, the answer read like Create Image's."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..connection import Connection
from ..manifest import Action
from . import Step
from .image_api import GPT_IMAGE_OPTIONS, gpt_image_problems, image_answer, images_result, options_when_set
from .image_sources import MAX_IMAGE_BYTES, MAX_MASK_BYTES, ImageFile, inline_problems, load_image

OPERATION = "images/edits"
# Azure's dated API has image edits from this version on.
AZURE_OLDEST_VERSION_WITH_EDITS = "2025-04-01-preview"
# As openai-python and Azure's examples send them: one image as `image`, several as repeated
# `image[]` parts.
ONE_IMAGE_FIELD = "image"
IMAGES_FIELD = "image[]"
SENT_WHEN_SET = ("size", "quality", *GPT_IMAGE_OPTIONS, "input_fidelity")


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Images and mask that cannot be used (checked without downloading), gpt-image-2's size
    limits and Azure's output formats."""
    problems: List[Dict[str, str]] = []
    for index, value in enumerate(inputs["images"]):
        problems += inline_problems(value, f"images/{index}", limit=MAX_IMAGE_BYTES)
    if "mask" in inputs:
        problems += inline_problems(inputs["mask"], "mask", limit=MAX_MASK_BYTES, png_only=True)
    return problems + gpt_image_problems(inputs, connection)


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    """Load every image (decode or download), then send one multipart edit request."""
    connection = step.connection
    model = inputs["model"]
    files = _files(step, inputs)
    fields: Dict[str, Any] = {"prompt": inputs["prompt"], "n": inputs["n"],
                              **options_when_set(inputs, SENT_WHEN_SET)}
    # Multipart fields are text: numbers travel as their digits.
    form = [(name, (None, str(value))) for name, value in connection.request_body(model, fields, OPERATION).items()]
    parts = form + [(field, (image.filename, image.content, image.content_type)) for field, image in files]
    # On Azure's v1 API image edits are served in preview only (operation_url says so).
    url = connection.route_url(OPERATION, model, oldest_dated_version=AZURE_OLDEST_VERSION_WITH_EDITS)
    response = step.client.request("POST", url, files=parts, action=step.action.key)
    return {**images_result([image_answer(response)]), "errors": []}


def _files(step: Step, inputs: Dict[str, Any]) -> List[Tuple[str, ImageFile]]:
    timeouts = (step.client.connect_timeout, step.client.read_timeout)
    field = ONE_IMAGE_FIELD if len(inputs["images"]) == 1 else IMAGES_FIELD
    policy = step.endpoint_policy
    files = [(field, load_image(value, f"images/{index}", stem=f"image-{index + 1}",
                                      limit=MAX_IMAGE_BYTES, timeouts=timeouts, endpoint_policy=policy))
             for index, value in enumerate(inputs["images"])]
    if "mask" in inputs:
        files.append(("mask", load_image(inputs["mask"], "mask", stem="mask", limit=MAX_MASK_BYTES,
                                         timeouts=timeouts, png_only=True, endpoint_policy=policy)))
    return files
