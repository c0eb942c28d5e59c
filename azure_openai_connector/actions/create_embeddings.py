"""Create Embeddings: a list of any length split into requests within the API's per-request
limits, sent concurrently on one pacer, the vectors put back in input order.

A failed request keeps its place: its inputs get None and the failure is listed with the input
range it covered; the vectors of the other requests are kept.
"""

from __future__ import annotations

import array
import base64
import binascii
import sys
from typing import Any, Dict, List, Sequence, Tuple

from ..errors import ConnectorError, InvalidResponseError
from ..http import Response
from . import Step
from .batch import map_in_order

OPERATION = "embeddings"
# OpenAI caps the tokens summed over one request's inputs (unconfirmed for Azure, harmless there).
MAX_TOKENS_PER_REQUEST = 300_000
# Tokens are estimated, not counted (no tokenizer dependency): a character is rarely less than a
# third of a token in real text, so slices estimated this way stay under the cap.
CHARACTERS_PER_TOKEN = 3
USAGE_FIELDS = ("prompt_tokens", "total_tokens")

Slice = Tuple[int, List[str]]  # (index of the first input, the inputs)


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    """Embed every input: slices sent concurrently on one pacer, vectors back in input order."""
    texts: List[str] = [inputs["input"]] if isinstance(inputs["input"], str) else inputs["input"]
    slices = split(texts, inputs["inputs_per_request"])
    pacer = step.new_pacer(inputs["max_concurrency"])
    keep_base64 = inputs["base64_output"]

    def embed(part: Slice) -> Dict[str, Any]:
        return _request(step, inputs, part[1], pacer, keep_base64)

    outcomes = map_in_order(slices, embed, inputs["max_concurrency"])
    embeddings: List[Any] = [None] * len(texts)
    errors: List[Dict[str, Any]] = []
    answers: List[Dict[str, Any]] = []
    for (start, part), (answer, error) in zip(slices, outcomes):
        if error is not None:
            if not isinstance(error, ConnectorError):
                raise error  # a bug, not a service answer: let it surface
            errors.append({"start": start, "end": start + len(part), "error": error.to_dict()})
            continue
        answers.append(answer)
        embeddings[start:start + len(part)] = answer["vectors"]
    if not answers:
        raise outcomes[0][1]  # type: ignore[misc]
    first = next(vector for vector in embeddings if vector is not None)
    usage = {name: sum(answer["usage"].get(name, 0) for answer in answers) for name in USAGE_FIELDS}
    return {"embeddings": embeddings, "model": answers[0]["model"],
            "dimensions": None if isinstance(first, str) else len(first),
            "usage": {**usage, "requests": len(slices)}, "errors": errors}


def split(texts: Sequence[str], inputs_per_request: int) -> List[Slice]:
    """Consecutive slices of at most `inputs_per_request` texts and about MAX_TOKENS_PER_REQUEST
    estimated tokens each (a single text is never split)."""
    slices: List[Slice] = []
    start, tokens = 0, 0
    for index, text in enumerate(texts):
        estimate = -(-len(text) // CHARACTERS_PER_TOKEN)
        if index > start and (index - start >= inputs_per_request or tokens + estimate > MAX_TOKENS_PER_REQUEST):
            slices.append((start, list(texts[start:index])))
            start, tokens = index, 0
        tokens += estimate
    slices.append((start, list(texts[start:])))
    return slices


def _request(step: Step, inputs: Dict[str, Any], texts: List[str], pacer: Any,
             keep_base64: bool) -> Dict[str, Any]:
    connection = step.connection
    model = inputs["model"]
    fields: Dict[str, Any] = {"input": texts, "encoding_format": inputs["encoding_format"]}
    for name in ("dimensions", "user"):
        if name in inputs:
            fields[name] = inputs[name]
    response = step.client.request("POST", connection.operation_url(OPERATION, model),
                                   json_body=connection.request_body(model, fields),
                                   action=step.action.key, pacer=pacer)
    return _vectors(response, len(texts), keep_base64)


def _vectors(response: Response, count: int, keep_base64: bool) -> Dict[str, Any]:
    """The answer's vectors ordered by their `index`, base64 decoded unless kept."""
    answer = response.json()
    data = answer.get("data") if isinstance(answer, dict) else None
    by_index: Dict[int, Any] = {}
    for item in data if isinstance(data, list) else ():
        if isinstance(item, dict) and isinstance(item.get("index"), int):
            by_index[item["index"]] = item.get("embedding")
    vectors = [by_index.get(index) for index in range(count)]
    if not all(isinstance(vector, (list, str)) for vector in vectors):
        raise _invalid(response, f"The embeddings answer does not hold one vector for each of its {count} inputs",
                       "missing_embeddings")
    if not keep_base64:
        vectors = [_decoded(vector, response) if isinstance(vector, str) else vector for vector in vectors]
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    return {"vectors": vectors, "model": answer.get("model"),
            "usage": {name: value for name, value in usage.items()
                      if isinstance(value, int) and not isinstance(value, bool)}}


def _decoded(text: str, response: Response) -> List[float]:
    """A base64 vector as floats: packed little-endian float32, as openai-python reads it."""
    try:
        values = array.array("f", base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid(response, "An embedding is not valid base64 float32 data", "invalid_embedding") from None
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def _invalid(response: Response, message: str, code: str) -> InvalidResponseError:
    return InvalidResponseError(message, status=response.status, code=code,
                                request_id=response.request_id, attempts=response.attempts)
