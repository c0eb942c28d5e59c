"""Raw Request multipart uploads with a list of files under one field: one part per file, in order,
with one name each, one name for all, or numbered names (image edits want repeated `image[]`)."""

from __future__ import annotations

import base64
from typing import Any, Dict

import pytest

from azure_openai_connector.emulator import Emulator
from azure_openai_connector.errors import InputValidationError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

SUN = load_manifest().action("edit_image").inputs.default("images")[0]
SUN_PNG = base64.b64decode(SUN.split(",", 1)[1])


def parts(emulator: Emulator) -> list:
    [request] = emulator.requests
    return [(part["field"], part["filename"], part["content_type"], part["data"]) for part in request.files]


def test_a_list_of_files_repeats_the_field_with_a_name_each(runtime: Runtime, emulator: Emulator,
                                                             openai_connection: Dict[str, Any]) -> None:
    result = runtime.run("raw_request", openai_connection, {
        "url": "/v1/images/edits", "method": "POST", "form_data": {"prompt": "Add a boat", "model": "gpt-image-1.5"},
        "file_data": {"image[]": [SUN, "data:image/png;base64," + base64.b64encode(SUN_PNG).decode()]},
        "file_data_file_names": {"image[]": ["first.png", "second.png"]}})

    assert result["status"] == 200
    assert parts(emulator) == [("image[]", "first.png", "image/png", SUN_PNG),
                               ("image[]", "second.png", "image/png", SUN_PNG)]


@pytest.mark.parametrize("names, expected", [
    (None, ["files-1", "files-2", "files-3"]),
    ({"files": "same.txt"}, ["same.txt"] * 3),
])
def test_names_for_a_list_default_to_numbered_or_one_for_all(runtime: Runtime, emulator: Emulator,
                                                            openai_connection: Dict[str, Any], names: Any,
                                                            expected: list) -> None:
    inputs: Dict[str, Any] = {"url": "/v1/files", "method": "POST", "form_data": {"purpose": "assistants"},
                              "file_data": {"files": ["one", "two", "three"]}}
    if names:
        inputs["file_data_file_names"] = names
    runtime.run("raw_request", openai_connection, inputs)
    assert [(field, name, data) for field, name, _, data in parts(emulator)] == [
        ("files", name, text) for name, text in zip(expected, (b"one", b"two", b"three"))]


@pytest.mark.parametrize("file_data, names, path", [
    ({"image[]": [SUN, SUN]}, {"image[]": ["only-one.png"]}, "file_data_file_names/image[]"),
    ({"image[]": [SUN, "data:image/png;base64,@@"]}, None, "file_data/image[]/1"),
    ({"image[]": []}, None, "file_data/image[]"),
])
def test_list_problems_are_refused_with_their_paths(runtime: Runtime, emulator: Emulator,
                                                    openai_connection: Dict[str, Any], file_data: Dict[str, Any],
                                                    names: Any, path: str) -> None:
    inputs: Dict[str, Any] = {"url": "/v1/images/edits", "method": "POST", "file_data": file_data}
    if names:
        inputs["file_data_file_names"] = names
    with pytest.raises(InputValidationError) as raised:
        runtime.run("raw_request", openai_connection, inputs)
    assert path in [problem["path"] for problem in raised.value.errors], raised.value.errors
    assert emulator.requests == []
