"""Image generation: per-model rules (DALL-E 2, DALL-E 3, GPT image) and the image download route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from . import responses, validation
from .call import Call
from .errors import AZURE, bad_request
from .reply import Reply, json_reply

GPT_IMAGE_ONLY_PARAMETERS = ("output_format", "output_compression", "background", "moderation", "partial_images")


@dataclass(frozen=True)
class ImageRules:
    max_n: int
    sizes: Tuple[str, ...]
    default_size: str
    qualities: Tuple[str, ...]
    prompt_limit: int
    url_allowed: bool
    revises_prompt: bool


IMAGE_RULES = {
    "dall-e-2": ImageRules(10, ("256x256", "512x512", "1024x1024"), "1024x1024", ("standard", "auto"), 1000, True, False),
    "dall-e-3": ImageRules(1, ("1024x1024", "1792x1024", "1024x1792"), "1024x1024", ("standard", "hd", "auto"), 4000, True, True),
    "gpt-image": ImageRules(10, ("1024x1024", "1536x1024", "1024x1536", "auto"), "auto", ("low", "medium", "high", "auto"), 32000, False, False),
}
# The Azure 2024-10-21 spec describes a DALL-E 3 deployment only, and without `auto` quality.
AZURE_IMAGE_RULES = ImageRules(1, ("1792x1024", "1024x1792", "1024x1024"), "1024x1024", ("standard", "hd"), 4000, True, True)
ANSWERABLE_GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536")
AZURE_V1_IMAGE_MODEL = "gpt-image-2"


def create_image(call: Call) -> Reply:
    body = call.body()
    prompt = str(validation.string(body, "prompt", required_field=True))
    if call.azure_dated:
        model, rules = "dall-e-3", AZURE_IMAGE_RULES
    elif call.dialect == AZURE:
        # v1: `model` is the deployment; one whose model is unknown is taken for a gpt-image one,
        # the image models Azure's v1 preview serves.
        model = call.model_behind(str(validation.string(body, "model", required_field=True)))
        if not (model.startswith("gpt-image") or model in IMAGE_RULES):
            model = AZURE_V1_IMAGE_MODEL
        rules = image_rules(model)
    else:
        model = validation.string(body, "model") or (
            "gpt-image-1" if any(body.get(name) is not None for name in GPT_IMAGE_ONLY_PARAMETERS) else "dall-e-2"
        )
        rules = image_rules(model)
    if not prompt:
        raise bad_request(
            "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead.",
            param="prompt",
            code="empty_string",
        )
    validation.max_length("prompt", prompt, rules.prompt_limit)
    n = validation.integer(body, "n", 1, rules.max_n, 1) or 1
    size = validation.string(body, "size") or rules.default_size
    if not (model.startswith("gpt-image-2") and _is_free_size(size)):
        validation.one_of("size", size, rules.sizes)
    quality = validation.string(body, "quality")
    if quality is not None:
        validation.one_of("quality", quality, rules.qualities)
    style = validation.string(body, "style")
    if style is not None:
        if not rules.revises_prompt:
            raise validation.unknown_parameter("style")
        validation.one_of("style", style, ("vivid", "natural"))
    response_format = validation.string(body, "response_format")
    if response_format is not None:
        if not rules.url_allowed:
            raise validation.unknown_parameter("response_format")
        validation.one_of("response_format", response_format, ("url", "b64_json"))
    if rules.url_allowed and not call.azure_dated:
        for name in GPT_IMAGE_ONLY_PARAMETERS:
            if body.get(name) is not None:
                raise validation.unknown_parameter(name)
    as_url = rules.url_allowed and response_format != "b64_json"
    azure = call.dialect == AZURE
    items = [
        responses.image_item(
            image_url=f"{call.base_url}/images/img-emu{call.serial:08d}-{index}.png" if as_url else None,
            revised_prompt=f"Emulated revision of: {prompt[:responses.QUOTED_CHARS]}" if rules.revises_prompt else None,
            azure=azure,
        )
        for index in range(n)
    ]
    extras = gpt_image_extras(body, prompt, n, size, quality) if not rules.url_allowed else None
    return json_reply(200, responses.images_response(items, extras))


def image_rules(model: str) -> ImageRules:
    if model.startswith("gpt-image"):
        return IMAGE_RULES["gpt-image"]
    if model in IMAGE_RULES:
        return IMAGE_RULES[model]
    raise bad_request(
        f"Invalid value: '{model}'. Supported values are: 'dall-e-2', 'dall-e-3', and the gpt-image models.",
        param="model",
        code="invalid_value",
    )


def _is_free_size(size: str) -> bool:
    width, _, height = size.partition("x")
    return width.isdigit() and height.isdigit() and int(width) % 16 == 0 and int(height) % 16 == 0


def gpt_image_extras(body: Dict[str, Any], prompt: str, n: int, size: str, quality: Optional[str]) -> Dict[str, Any]:
    """The extra fields GPT image models report (only values the answer enums allow)."""
    input_tokens = responses.estimate_tokens(len(prompt))
    output_tokens = 16 * n
    extras: Dict[str, Any] = {
        "background": "transparent" if body.get("background") == "transparent" else "opaque",
        "output_format": body.get("output_format") if body.get("output_format") in ("png", "webp", "jpeg") else "png",
        "quality": quality if quality in ("low", "medium", "high") else "medium",
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "input_tokens_details": {"text_tokens": input_tokens, "image_tokens": 0},
            "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
        },
    }
    if size in ANSWERABLE_GPT_IMAGE_SIZES or size == "auto":
        extras["size"] = "1024x1024" if size == "auto" else size
    return extras


def image_blob(call: Call) -> Reply:
    return Reply(200, responses.TINY_PNG, "image/png")
