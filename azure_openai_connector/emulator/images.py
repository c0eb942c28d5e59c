"""Image generation and edits: per-model rules (DALL-E 2, DALL-E 3, GPT image) and the image download route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from . import responses, validation
from .call import Call
from .errors import AZURE, bad_request
from .multipart import is_multipart
from .pictures import GENERATED_PNG
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
    if not rules.url_allowed:
        gpt_image_checks(body, call.dialect == AZURE)
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
    """gpt-image-2's documented limits: edges multiples of 16, long edge at most 3840, ratio at
    most 3:1, 655,360 to 8,294,400 pixels."""
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        return False
    w, h = int(width), int(height)
    return (w % 16 == 0 and h % 16 == 0 and max(w, h) <= 3840 and max(w, h) <= 3 * min(w, h)
            and 655_360 <= w * h <= 8_294_400)


def gpt_image_checks(body: Dict[str, Any], azure: bool) -> None:
    """The output options of the GPT image models, refused as the service does."""
    output_format = validation.string(body, "output_format")
    if output_format is not None:
        validation.one_of("output_format", output_format, ("png", "jpeg") if azure else ("png", "jpeg", "webp"))
    background = validation.string(body, "background")
    if background is not None:
        validation.one_of("background", background, ("transparent", "opaque", "auto"))
        if background == "transparent" and output_format not in (None, "png", "webp"):
            raise bad_request("Transparent background requires output_format png or webp.", param="background")
    compression = _integer_field(body, "output_compression", 0, 100)
    if compression is not None and output_format not in ("jpeg", "webp"):
        raise bad_request("output_compression is only supported for the jpeg and webp output formats.",
                          param="output_compression")
    moderation = validation.string(body, "moderation")
    if moderation is not None:
        validation.one_of("moderation", moderation, ("low", "auto"))


def _integer_field(body: Dict[str, Any], name: str, low: int, high: int) -> Optional[int]:
    """An integer that a multipart form carries as text, or a JSON body as a number."""
    value = body.get(name)
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            raise bad_request(f"Invalid type for '{name}': expected an integer, but got a string instead.",
                              param=name, code="invalid_type")
        body = {name: int(value)}
    return validation.integer(body, name, low, high, None)


EDIT_IMAGE_FIELDS = ("image", "image[]")
MAX_EDIT_IMAGES = 16
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")
DEFAULT_EDIT_MODEL = "gpt-image-1.5"
AZURE_EDIT_MODEL = "gpt-image-2"
ALL_FIXED_SIZES = ("256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792", "auto")


def edit_image(call: Call) -> Reply:
    """A multipart edit: every `image` / `image[]` part (the request records them), an optional
    PNG mask, and the generation options; answers base64 images like generation."""
    request = call.request
    content_type = request.headers.get("content-type", "")
    if not is_multipart(content_type):
        raise bad_request(f"Invalid Content-Type header ({content_type or 'none'}), expected multipart/form-data.")
    form: Dict[str, Any] = dict(request.form)
    images = [part for part in request.files if part["field"] in EDIT_IMAGE_FIELDS]
    if not images:
        raise bad_request("Missing required parameter: 'image'.", param="image", code="missing_required_parameter")
    prompt = str(validation.string(form, "prompt", required_field=True))
    if not prompt:
        raise bad_request("Invalid 'prompt': empty string.", param="prompt", code="empty_string")
    model = form.get("model") or DEFAULT_EDIT_MODEL
    named_deployment = call.azure_dated or (call.dialect == AZURE and not model.startswith("gpt-image"))
    if named_deployment:
        # Azure names deployments, not models; its image edits serve the GPT image models.
        model = AZURE_EDIT_MODEL
    rules = image_rules(model)
    validation.max_length("prompt", prompt, rules.prompt_limit)
    limit = 1 if model.startswith("dall-e-2") else MAX_EDIT_IMAGES
    if len(images) > limit:
        raise bad_request(f"Invalid 'image': too many images. Expected at most {limit}, but got {len(images)}.",
                          param="image", code="array_above_max_length")
    for position, part in enumerate(images):
        if not part["data"].startswith(IMAGE_SIGNATURES):
            raise bad_request(f"Invalid image file or mode for image {position + 1}, please check your image file.",
                              param="image", code="invalid_image_format")
    masks = [part for part in request.files if part["field"] == "mask"]
    if masks and not masks[0]["data"].startswith(IMAGE_SIGNATURES[0]):
        raise bad_request("Invalid mask image: it must be a PNG file.", param="mask", code="invalid_image_format")
    n = _integer_field(form, "n", 1, rules.max_n) or 1
    size = form.get("size") or "1024x1024"
    # A deployment's name does not tell its model: any size some image model takes is its own.
    known_sizes = ALL_FIXED_SIZES if named_deployment else rules.sizes
    if not (model.startswith("gpt-image-2") and _is_free_size(size)):
        validation.one_of("size", size, known_sizes)
    quality = form.get("quality")
    if quality is not None:
        validation.one_of("quality", quality, ("standard", *rules.qualities) if named_deployment else rules.qualities)
    fidelity = form.get("input_fidelity")
    if fidelity is not None:
        validation.one_of("input_fidelity", fidelity, ("high", "low"))
    if rules.url_allowed:
        for name in GPT_IMAGE_ONLY_PARAMETERS:
            if form.get(name) is not None:
                raise validation.unknown_parameter(name)
    else:
        gpt_image_checks(form, call.dialect == AZURE)
    items = [responses.image_item(image_url=None, revised_prompt=None, azure=call.dialect == AZURE) for _ in range(n)]
    extras = gpt_image_extras(form, prompt, n, size, quality) if not rules.url_allowed else None
    return json_reply(200, responses.images_response(items, extras))


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
    return Reply(200, GENERATED_PNG, "image/png")
