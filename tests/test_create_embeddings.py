"""Create Embeddings against the emulator: routes per service, splitting a long list into
concurrent requests with the vectors back in order, a failed slice keeping its place, base64."""

from __future__ import annotations

import array
import base64
import json
from typing import Any, Dict

import pytest
from jsonschema import Draft7Validator

from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.errors import BadRequestError, InputValidationError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

from support import API_KEY

ACTION = "create_embeddings"
FORM = load_manifest().action(ACTION).inputs


def assert_matches_output_schema(result: Dict[str, Any]) -> None:
    Draft7Validator(load_manifest().action(ACTION).output).validate(result)


def texts(count: int) -> list:
    return [f"input-{index:05d}" for index in range(count)]


def test_defaults_on_openai(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, openai_connection, {})

    [request] = emulator.requests
    assert request.path == "/v1/embeddings"
    assert request.json == {"model": "text-embedding-3-small", "input": [FORM.default("input")],
                            "encoding_format": "base64"}
    [vector] = result["embeddings"]
    assert len(vector) == 1536 and result["dimensions"] == 1536
    assert result["model"] == "text-embedding-3-small"
    assert result["errors"] == [] and result["usage"]["requests"] == 1
    assert_matches_output_schema(result)


@pytest.mark.parametrize("api_version, path, query", [
    ("2024-10-21", "/openai/deployments/my-embedder/embeddings", {"api-version": "2024-10-21"}),
    ("v1", "/openai/v1/embeddings", {}),
])
def test_azure_routes(runtime: Runtime, emulator: Emulator, azure_connection: Dict[str, Any],
                      api_version: str, path: str, query: Dict[str, str]) -> None:
    connection = {**azure_connection, "api_version": api_version}
    result = runtime.run(ACTION, connection, {"model": "my-embedder", "input": ["a", "b"], "dimensions": 8})

    [request] = emulator.requests
    assert (request.path, request.query) == (path, query)
    assert ("model" in request.json) is (api_version == "v1")
    assert [len(vector) for vector in result["embeddings"]] == [8, 8]


def test_five_thousand_inputs_go_out_as_several_requests_and_come_back_in_order(
        runtime: Runtime, emulator: Emulator, connection: Dict[str, Any]) -> None:
    inputs = texts(5000)
    result = runtime.run(ACTION, connection, {"input": inputs, "dimensions": 4, "max_concurrency": 3})

    sent = sorted((request.json["input"] for request in emulator.requests), key=lambda part: part[0])
    assert [len(part) for part in sent] == [2048, 2048, 904]
    assert [text for part in sent for text in part] == inputs
    # Each text's vector is the one the emulator gives that text alone: order kept end to end.
    alone = runtime.run(ACTION, connection, {"input": [inputs[0], inputs[2500], inputs[4999]], "dimensions": 4})
    assert [result["embeddings"][index] for index in (0, 2500, 4999)] == alone["embeddings"]
    assert len(result["embeddings"]) == 5000 and len({json.dumps(v) for v in result["embeddings"]}) == 5000
    assert result["usage"]["requests"] == 3
    assert result["usage"]["prompt_tokens"] == sum(-(-len(text) // 4) for text in inputs)
    assert result["errors"] == []


def test_a_failing_middle_slice_keeps_its_place(runtime: Runtime, emulator: Emulator,
                                                connection: Dict[str, Any]) -> None:
    emulator.script(Fault.bad_request("Emulated refusal of the middle slice.", param="input"), times=None,
                    match='"input-02048"')
    inputs = texts(5000)
    result = runtime.run(ACTION, connection, {"input": inputs, "dimensions": 4})

    [failure] = result["errors"]
    assert (failure["start"], failure["end"]) == (2048, 4096)
    assert failure["error"]["type"] == "bad_request" and failure["error"]["status"] == 400
    assert failure["error"]["message"] == "Emulated refusal of the middle slice."
    assert result["embeddings"][2048:4096] == [None] * 2048
    assert all(len(vector) == 4 for vector in result["embeddings"][:2048] + result["embeddings"][4096:])
    assert result["usage"]["requests"] == 3
    assert_matches_output_schema(result)


def test_every_slice_failing_raises_the_typed_error(runtime: Runtime, emulator: Emulator,
                                                    openai_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.bad_request("No.", param="input"), times=None)
    with pytest.raises(BadRequestError) as raised:
        runtime.run(ACTION, openai_connection, {"input": ["x", "y"]})
    assert raised.value.status == 400 and raised.value.param == "input"


def test_base64_decodes_to_the_same_floats(runtime: Runtime, emulator: Emulator,
                                           connection: Dict[str, Any]) -> None:
    words = ["otter", "beaver", "heron"]
    as_floats = runtime.run(ACTION, connection, {"input": words, "encoding_format": "float", "dimensions": 16})
    decoded = runtime.run(ACTION, connection, {"input": words, "encoding_format": "base64", "dimensions": 16})
    raw = runtime.run(ACTION, connection, {"input": words, "base64_output": True, "dimensions": 16})

    assert [request.json["encoding_format"] for request in emulator.requests] == ["float", "base64", "base64"]
    assert decoded["embeddings"] == as_floats["embeddings"]
    assert all(isinstance(text, str) for text in raw["embeddings"]) and raw["dimensions"] is None
    assert [array.array("f", base64.b64decode(text)).tolist() for text in raw["embeddings"]] == as_floats["embeddings"]


def test_a_token_heavy_list_is_split_by_its_estimated_tokens(runtime: Runtime, emulator: Emulator,
                                                             openai_connection: Dict[str, Any]) -> None:
    # 40 texts of 30,000 characters: about 400,000 tokens at 3 characters a token, too many for one request.
    inputs = [f"{index:03d}" + "x" * 29_997 for index in range(40)]
    result = runtime.run(ACTION, openai_connection, {"input": inputs, "dimensions": 2})

    sizes = sorted(len(request.json["input"]) for request in emulator.requests)
    assert sizes == [10, 30]
    assert len(result["embeddings"]) == 40 and result["errors"] == []


def test_inputs_per_request_sets_the_slice_size(runtime: Runtime, emulator: Emulator,
                                                openai_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, openai_connection, {"input": texts(7), "inputs_per_request": 3, "dimensions": 2})
    assert sorted(len(request.json["input"]) for request in emulator.requests) == [1, 3, 3]
    assert result["usage"]["requests"] == 3


@pytest.mark.parametrize("inputs, path", [
    ({"model": "text-embedding-ada-002", "dimensions": 256}, "dimensions"),
    ({"model": "text-embedding-3-small", "dimensions": 2000}, "dimensions"),
    ({"input": ["fine", ""]}, "input/1"),
    ({"encoding_format": "float", "base64_output": True}, "encoding_format"),
])
def test_refused_before_sending(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any],
                                inputs: Dict[str, Any], path: str) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, openai_connection, inputs)
    assert path in [problem["path"] for problem in raised.value.errors]
    assert emulator.requests == []


def test_the_emulator_enforces_the_per_request_limits(emulator: Emulator) -> None:
    import requests

    url = emulator.url + "/v1/embeddings"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    too_many = requests.post(url, json={"model": "text-embedding-3-small", "input": texts(2049)},
                             headers=headers, timeout=10)
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "array_above_max_length"
    too_long = requests.post(url, json={"model": "text-embedding-3-small", "input": "x" * 40_000},
                             headers=headers, timeout=10)
    assert too_long.status_code == 400 and "maximum context length is 8192 tokens" in too_long.json()["error"]["message"]
    too_much = requests.post(url, json={"model": "text-embedding-3-small", "input": ["y" * 30_000] * 41},
                             headers=headers, timeout=10)
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "max_tokens_per_request"
