"""Summarize Text against the emulator: one request for short texts, map-reduce for long ones."""

from __future__ import annotations

import re
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

import azure_openai_connector
from azure_openai_connector import InputValidationError, ServerError
from azure_openai_connector.actions.summarize_text import split_text
from azure_openai_connector.emulator import Fault
from azure_openai_connector.manifest import load_manifest

ACTION = "summarize_text"
FORM = load_manifest().action(ACTION).inputs
OUTPUT = Draft7Validator(load_manifest().action(ACTION).output)
DEFAULT_CHUNK_SIZE = FORM.default("chunk_size")
SMALLEST_CHUNK_SIZE = FORM.fields["chunk_size"]["minimum"]


def long_text(characters: int) -> str:
    """Paragraphs of numbered sentences, so every part of the text is recognisable."""
    paragraphs: List[str] = []
    size = 0
    while size < characters:
        number = len(paragraphs)
        paragraph = " ".join(f"Sentence {s} of paragraph {number} is about topic {number * 31 + s}."
                             for s in range(12))
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def messages(request: Any) -> dict:
    return {message["role"]: message["content"] for message in request.json["messages"]}


def without_whitespace(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- splitting ----------------------------------------------------------------------------------


def test_split_keeps_paragraphs_whole_when_they_fit():
    text = "First paragraph here.\n\nSecond one.\n\n\n  Third paragraph, a bit longer."

    assert split_text(text, 40) == ["First paragraph here.\n\nSecond one.", "Third paragraph, a bit longer."]


def test_split_falls_back_to_sentences_then_words_then_a_hard_cut():
    text = "One short sentence. Another sentence follows! " + "x" * 25 + " tail"

    chunks = split_text(text, 20)

    assert chunks == ["One short sentence.", "Another sentence", "follows!",
                      "x" * 20, "xxxxx tail"]


def test_split_cuts_text_without_spaces_at_its_sentence_ends():
    text = "今日は晴れです。明日は雨でしょう！" * 3

    chunks = split_text(text, 20)

    assert all(len(chunk) <= 20 and chunk[-1] in "。！" for chunk in chunks)
    assert "".join(chunks) == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab .!?\n\t"), min_size=1, max_size=400),
       chunk_size=st.integers(min_value=1, max_value=60))
def test_split_properties(text, chunk_size):
    chunks = split_text(text, chunk_size)

    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)
    assert without_whitespace("".join(chunks)) == without_whitespace(text)
    longest_word = max((len(word) for word in text.split()), default=0)
    if longest_word <= chunk_size:
        # Nothing had to be cut, so every word of the text is whole in some chunk.
        assert [word for chunk in chunks for word in chunk.split()] == text.split()


# --- one request --------------------------------------------------------------------------------


def test_short_text_is_one_request(runtime, connection, emulator):
    text = FORM.default("text")

    result = runtime.run(ACTION, connection, {})

    (request,) = emulator.requests
    sent = messages(request)
    assert sent["user"] == text
    assert "summar" in sent["system"].lower()
    assert result["summary"] == f"Emulated reply to: {text[:200]}"
    assert result["chunks"] == 1
    OUTPUT.validate(result)
    assert result["usage"]["requests"] == 1
    assert result["usage"]["total_tokens"] == (result["usage"]["prompt_tokens"]
                                               + result["usage"]["completion_tokens"]) > 0


def test_instructions_and_token_limit_reach_the_request(runtime, azure_connection, emulator):
    runtime.run(ACTION, azure_connection, {"text": "Some text to summarize.",
                                           "instructions": "three bullet points in French",
                                           "max_summary_tokens": 64})

    (request,) = emulator.requests
    assert "three bullet points in French" in messages(request)["system"]
    assert request.json["max_completion_tokens"] == 64
    assert "max_tokens" not in request.json


def test_public_run_action(openai_connection, emulator):
    result = azure_openai_connector.run_action(ACTION, openai_connection, {"text": "Short text."})

    assert result["summary"] == "Emulated reply to: Short text."
    assert emulator.request_count == 1


# --- map-reduce ---------------------------------------------------------------------------------


def test_long_text_is_summarized_in_chunks_then_combined(runtime, connection, emulator):
    text = long_text(200_000)

    result = runtime.run(ACTION, connection, {"text": text, "instructions": "Name every topic.",
                                              "max_summary_tokens": 500})

    requests = emulator.requests
    *chunk_requests, final = requests
    assert len(chunk_requests) == result["chunks"] > 1
    assert result["usage"]["requests"] == len(requests)
    chunk_texts = [messages(request)["user"] for request in chunk_requests]
    assert all(len(chunk) <= DEFAULT_CHUNK_SIZE for chunk in chunk_texts)
    assert without_whitespace("".join(sorted(chunk_texts, key=text.index))) == without_whitespace(text)
    combined = messages(final)["user"]
    for chunk in chunk_texts:
        # The emulated model quotes the first 200 characters of what it was asked to summarize.
        assert f"Emulated reply to: {chunk[:200]}".strip() in combined
    assert "Name every topic." in messages(final)["system"]
    assert all(request.json["max_completion_tokens"] == 500 for request in requests)
    assert result["summary"] == f"Emulated reply to: {combined[:200]}".strip()
    OUTPUT.validate(result)


def test_long_part_summaries_are_reduced_again(runtime, azure_connection, emulator):
    text = long_text(60_000)

    result = runtime.run(ACTION, azure_connection, {"text": text, "chunk_size": SMALLEST_CHUNK_SIZE})

    requests = emulator.requests
    assert result["chunks"] > 1
    assert result["usage"]["requests"] == len(requests) > result["chunks"] + 1
    assert all(len(messages(request)["user"]) <= SMALLEST_CHUNK_SIZE for request in requests)


def test_a_failing_chunk_raises_its_typed_error_naming_the_chunk(runtime, azure_connection, emulator,
                                                                 recorded_sleep):
    text = long_text(100_000)
    marker = "topic 1000."  # in one chunk only
    assert text.count(marker) == 1
    emulator.script(Fault.status(500), times=None, match=marker)

    with pytest.raises(ServerError) as raised:
        runtime.run(ACTION, azure_connection, {"text": text})

    error = raised.value
    assert error.status == 500 and error.attempts == 3
    assert re.search(r"chunk \d+ of \d+", error.message)
    assert len(recorded_sleep.waits) == 2
    # No final summary was attempted from the incomplete parts.
    assert not any("combine" in messages(request)["system"] for request in emulator.requests)
    # ...but every part summary that was paid for comes back with the error.
    completed = error.details["completed_parts"]
    failed_part = int(re.search(r"chunk (\d+) of", error.message).group(1))
    assert completed and failed_part not in {part["part"] for part in completed}
    assert all(part["summary"].startswith("Emulated reply to:") for part in completed)
    assert error.details["usage"]["requests"] == len(completed)
    assert error.to_dict()["details"]["completed_parts"] == completed


# --- input validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("inputs, path", [
    ({"chunk_size": 10}, "chunk_size"),
    ({"text": "   \n\n  "}, "text"),
    ({"text": ""}, "text"),
])
def test_invalid_inputs_are_refused_before_any_request(runtime, connection, emulator, inputs, path):
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, connection, inputs)

    assert [error["path"] for error in raised.value.errors] == [path]
    assert emulator.request_count == 0
