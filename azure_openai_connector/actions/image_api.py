"""What the image actions share: the per-model rules JSON Schema cannot state, and reading an
images answer (generations and edits answer alike) into the step's result."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..connection import Connection
from ..errors import InvalidResponseError
from ..http import Response

IMAGE_FIELDS = ("url", "b64_json", "revised_prompt", "content_filter_results")
# Top-level fields of a gpt-image answer, kept as returned.
ANSWER_FIELDS = ("usage", "size", "quality", "background", "output_format")
# Options the gpt-image models take, sent only when the user set them.
GPT_IMAGE_OPTIONS = ("background", "output_format", "output_compression")

GPT_IMAGE_2 = re.compile(r"^gpt-image-2")
# Every size some image model takes as it is; any other WxH is a gpt-image-2 size (the only
# family with free sizes), so its limits apply whatever the model or deployment is called.
FIXED_SIZES = frozenset({"256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792"})
FREE_SIZE = re.compile(r"^(\d+)x(\d+)$")
# gpt-image-2's documented size limits (OpenAI and Azure agree on these).
SIZE_STEP = 16
LONGEST_EDGE = 3840
WIDEST_RATIO = 3
FEWEST_PIXELS = 655_360
MOST_PIXELS = 8_294_400
AZURE_OUTPUT_FORMATS = ("png", "jpeg")


def gpt_image_problems(inputs: Mapping[str, Any], connection: Connection) -> List[Dict[str, str]]:
    """The image rules that need arithmetic or the connection: gpt-image-2's size limits (for
    every size no other family has), and the output formats Azure offers."""
    problems: List[Dict[str, str]] = []
    size = inputs.get("size")
    found = FREE_SIZE.match(size) if isinstance(size, str) else None
    if found and (GPT_IMAGE_2.search(inputs["model"]) or size not in FIXED_SIZES):
        problems += [{"path": "size", "message": f"{size}: {reason} (the gpt-image-2 size rule)"}
                     for reason in _gpt_image_2_size_problems(int(found[1]), int(found[2]))]
    output_format = inputs.get("output_format")
    if not connection.is_openai and output_format is not None and output_format not in AZURE_OUTPUT_FORMATS:
        problems.append({"path": "output_format",
                         "message": f"Azure OpenAI does not offer {output_format} output; use png or jpeg "
                                    "(the Azure output_format rule)"})
    return problems


def _gpt_image_2_size_problems(width: int, height: int) -> List[str]:
    long_edge, short_edge = max(width, height), min(width, height)
    reasons = []
    if width % SIZE_STEP or height % SIZE_STEP:
        reasons.append(f"both edges must be multiples of {SIZE_STEP}")
    if long_edge > LONGEST_EDGE:
        reasons.append(f"the long edge may be at most {LONGEST_EDGE} pixels")
    if long_edge > WIDEST_RATIO * short_edge:
        reasons.append(f"the aspect ratio may be at most {WIDEST_RATIO}:1")
    if not FEWEST_PIXELS <= width * height <= MOST_PIXELS:
        reasons.append(f"the image must have {FEWEST_PIXELS:,} to {MOST_PIXELS:,} pixels "
                       f"(this size has {width * height:,})")
    return reasons


def options_when_set(inputs: Mapping[str, Any], names: Sequence[str]) -> Dict[str, Any]:
    """The options among `names` that the user set (none of them has a manifest default)."""
    return {name: inputs[name] for name in names if name in inputs}


def image_answer(response: Response) -> Dict[str, Any]:
    """The parsed answer, or InvalidResponseError when it lacks its images or creation time."""
    answer = response.json()
    data = answer.get("data") if isinstance(answer, dict) else None
    created = answer.get("created") if isinstance(answer, dict) else None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data) or not (
            isinstance(created, int) and not isinstance(created, bool)):
        raise InvalidResponseError("The image answer lacks its list of images or its creation time",
                                   status=response.status, code="missing_data",
                                   request_id=response.request_id, attempts=response.attempts)
    return answer


def image_item(item: Mapping[str, Any]) -> Dict[str, Any]:
    """One image of an answer, with its revised prompt and filter results where given."""
    return {name: item[name] for name in IMAGE_FIELDS if name in item}


def answer_fields(answers: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """The answer-level fields (usage, size, quality...) as the first answer that has each gave them."""
    fields: Dict[str, Any] = {}
    for name in ANSWER_FIELDS:
        for answer in answers:
            if answer.get(name) is not None:
                fields[name] = answer[name]
                break
    return fields


def prompt_filter_results(answers: Sequence[Mapping[str, Any]]) -> Optional[List[Any]]:
    """Azure's verdict on the prompt: a top-level list, or (DALL-E on Azure) an object on each
    image. Every request sent the same prompt, so the first verdict found stands for all."""
    for answer in answers:
        if isinstance(answer.get("prompt_filter_results"), list):
            return answer["prompt_filter_results"]
        for item in answer["data"]:
            if isinstance(item.get("prompt_filter_results"), dict):
                return [{"prompt_index": 0, "content_filter_results": item["prompt_filter_results"]}]
    return None


def images_result(answers: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """created, every image in order, the answer-level fields and the prompt's filter verdict."""
    result: Dict[str, Any] = {
        "created": answers[0].get("created"),
        "images": [image_item(item) for answer in answers for item in answer["data"]],
        **answer_fields(answers),
    }
    verdict = prompt_filter_results(answers)
    if verdict is not None:
        result["prompt_filter_results"] = verdict
    return result
