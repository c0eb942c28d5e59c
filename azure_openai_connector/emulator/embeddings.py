"""Embeddings: deterministic vectors (the same text always gives the same vector), the service's
per-request limits, and `base64` encoding as packed little-endian float32."""

from __future__ import annotations

import array
import base64
import hashlib
import math
import random
import sys
from typing import Any, List

from . import responses, validation
from .call import Call
from .errors import ServiceRefusal, bad_request
from .reply import Reply, json_reply

MAX_INPUTS = 2048
MAX_TOKENS_PER_INPUT = 8192
MAX_TOKENS_PER_REQUEST = 300_000
MODEL_DIMENSIONS = {"text-embedding-3-large": 3072, "text-embedding-3-small": 1536, "text-embedding-ada-002": 1536}
DEFAULT_DIMENSIONS = 1536
AZURE_EMBEDDING_MODEL = "text-embedding-3-small"


def create_embeddings(call: Call) -> Reply:
    body = call.body()
    model = None if call.azure_dated else validation.string(body, "model", required_field=True)
    texts = input_texts(validation.required(body, "input"))
    encoding = validation.one_of("encoding_format", validation.string(body, "encoding_format") or "float",
                                 ("float", "base64"))
    dimensions = validation.integer(body, "dimensions", 1, None, None)
    validation.string(body, "user")
    native = MODEL_DIMENSIONS.get(str(model), DEFAULT_DIMENSIONS)
    if dimensions is not None and str(model).startswith("text-embedding-ada"):
        raise bad_request("This model does not support specifying dimensions.", param="dimensions")
    if dimensions is not None and model in MODEL_DIMENSIONS and dimensions > native:
        raise bad_request(f"Invalid 'dimensions': integer above maximum value. Expected a value <= {native}, "
                          f"but got {dimensions} instead.", param="dimensions", code="integer_above_max_value")
    tokens = [responses.estimate_tokens(len(text)) for text in texts]
    for count in tokens:
        if count > MAX_TOKENS_PER_INPUT:
            raise bad_request(f"This model's maximum context length is {MAX_TOKENS_PER_INPUT} tokens, however you "
                              f"requested {count} tokens ({count} in your prompt; 0 for the completion). Please "
                              "reduce your prompt; or completion length.")
    if sum(tokens) > MAX_TOKENS_PER_REQUEST:
        raise bad_request(f"Requested {sum(tokens)} tokens, max {MAX_TOKENS_PER_REQUEST} tokens per request",
                          code="max_tokens_per_request")
    length = dimensions or native
    data = [{"object": "embedding", "index": index, "embedding": encoded(vector(text, length), encoding)}
            for index, text in enumerate(texts)]
    answer = {"object": "list", "data": data, "model": AZURE_EMBEDDING_MODEL if model is None else model,
              "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}}
    return json_reply(200, answer)


def input_texts(value: Any) -> List[str]:
    """The inputs as texts (token arrays become their numbers), refused as the service does."""
    if isinstance(value, str):
        items: List[Any] = [value]
    elif isinstance(value, list) and value and all(isinstance(item, int) and not isinstance(item, bool)
                                                   for item in value):
        items = [" ".join(str(token) for token in value)]
    elif isinstance(value, list):
        items = value
    else:
        raise _invalid_input()
    if not items:
        raise bad_request("Invalid 'input': empty array. Expected an array with minimum length 1, but got an "
                          "empty array instead.", param="input", code="empty_array")
    if len(items) > MAX_INPUTS:
        raise bad_request(f"Invalid 'input': array too long. Expected an array with maximum length {MAX_INPUTS}, "
                          f"but got an array with length {len(items)} instead.", param="input",
                          code="array_above_max_length")
    texts = []
    for item in items:
        if isinstance(item, list) and item and all(isinstance(token, int) for token in item):
            item = " ".join(str(token) for token in item)
        if not isinstance(item, str) or not item:
            raise _invalid_input()
        texts.append(item)
    return texts


def _invalid_input() -> ServiceRefusal:
    return bad_request("'$.input' is invalid. Please check the API reference: "
                       "https://platform.openai.com/docs/api-reference.", param="input")


def vector(text: str, length: int) -> List[float]:
    """A unit vector drawn from the text's hash, rounded to float32 so JSON and base64 agree."""
    generator = random.Random(hashlib.sha256(text.encode("utf-8")).digest())
    values = [generator.uniform(-1.0, 1.0) for _ in range(length)]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return array.array("f", (value / norm for value in values)).tolist()


def encoded(values: List[float], encoding: str) -> Any:
    if encoding == "float":
        return values
    packed = array.array("f", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")
