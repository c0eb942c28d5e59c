"""Summarize Text: one chat request for a short text; map-reduce for a long one (split at paragraph,
sentence and word boundaries, summarize the chunks concurrently, then summarize the summaries).

A chunk that still fails after the HTTP layer's retries fails the whole step with that chunk's
own typed error (its message names the chunk): a summary silently missing part of the text would
look right and be wrong. Nothing already paid for is lost: the error's `details` carry every part
summary that finished and the usage spent.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..connection import Connection
from ..errors import ConnectorError, InvalidResponseError
from ..manifest import Action
from . import Step
from .batch import Skipped, map_in_order, total_usage
from .chat_api import chat_completion, first_content
from .pacing import for_request
from .pool_sizing import connections_in_use
from .chat_output import parsed_output
from .chat_request import (azure_version_problems, family_problems, max_tokens_field, response_format_field,
                           response_format_problems)

# Reduce rounds are bounded so that a model whose summaries do not shrink cannot loop forever.
MAX_REDUCE_ROUNDS = 8
# Paragraphs (blank lines), sentences, sentences of scripts written without spaces, then words;
# the joiner puts back what a split removed.
BOUNDARIES: Tuple[Tuple[re.Pattern, str], ...] = (
    (re.compile(r"\n[ \t\r\f\v]*\n\s*"), "\n\n"),
    (re.compile(r"(?<=[.!?])\s+"), " "),
    (re.compile(r"(?<=[。！？])"), ""),
    (re.compile(r"\s+"), " "),
)
PART_SEPARATOR = "\n\n"

SUMMARIZER = "You are a concise summarizer. Summarize the user's text faithfully, keeping its key facts."
PART_SUMMARIZER = ("You are a concise summarizer. The user's text is one part of a longer document; "
                   "summarize this part faithfully, keeping its key facts.")
COMBINER = ("You are a concise summarizer. The user's text is a series of summaries of consecutive "
            "parts of one document; combine them into one summary of the whole document.")
FINAL_INSTRUCTIONS = "Follow these instructions:"
# JSON mode needs the word JSON in the messages (the service refuses the request otherwise).
JSON_ANSWER = "Give the summary as JSON."
PART_INSTRUCTIONS = "Keep whatever the final summary needs to follow these instructions:"


def split_text(text: str, chunk_size: int) -> List[str]:
    """Chunks of at most `chunk_size` characters, packed greedily from whole paragraphs, else
    sentences, else words; only a word longer than `chunk_size` is cut. Blank text gives []."""
    chunks: List[str] = []
    # The chunk being packed, as parts and a running length: growing one string by copying it
    # for every piece made splitting cost text length times chunk size.
    current: List[str] = []
    length = 0
    for joiner, piece in _pieces(text.strip(), chunk_size, level=0, joiner=""):
        if not length:
            current, length = [piece], len(piece)
        elif length + len(joiner) + len(piece) <= chunk_size:
            current += (joiner, piece)
            length += len(joiner) + len(piece)
        else:
            chunks.append("".join(current))
            current, length = [piece], len(piece)
    if length:
        chunks.append("".join(current))
    return chunks


def _pieces(text: str, limit: int, *, level: int, joiner: str) -> Iterator[Tuple[str, str]]:
    """(joiner, piece) pairs, each piece at most `limit` long, split at the coarsest boundary
    that makes it fit; `joiner` is what separated the piece from the one before."""
    if len(text) <= limit:
        yield joiner, text
        return
    if level == len(BOUNDARIES):
        for start in range(0, len(text), limit):
            yield (joiner if start == 0 else ""), text[start:start + limit]
        return
    pattern, separator = BOUNDARIES[level]
    parts = [part.strip() for part in pattern.split(text)]
    for position, part in enumerate(part for part in parts if part):
        yield from _pieces(part, limit, level=level + 1, joiner=joiner if position == 0 else separator)


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Refuse a text with nothing to summarize before any request is paid for, and what the
    model's family or the API version refuses, or a json_schema format that breaks its rules."""
    problems = []
    if not inputs["text"].strip():
        problems.append({"path": "text", "message": "has only whitespace; there is nothing to summarize"})
    return (problems + family_problems(action.inputs, inputs)
            + azure_version_problems(action.inputs, inputs, connection) + response_format_problems(inputs))


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    summarizer = _Summarizer(step, inputs)
    chunk_size: int = inputs["chunk_size"]
    text: str = inputs["text"]
    chunks = split_text(text, chunk_size) if len(text) > chunk_size else [text]
    if len(chunks) == 1:
        summary = summarizer.summarize(chunks[0], SUMMARIZER, final=True)
    else:
        summary = summarizer.map_reduce(chunks)
    parsed, parse_errors = parsed_output(summary, summarizer.response_format)
    return {"summary": summary, "chunks": len(chunks), "usage": summarizer.usage(),
            "parsed": parsed, "parse_errors": parse_errors}


class _Summarizer:
    """The requests of one step, sharing one pacer and one usage tally."""

    def __init__(self, step: Step, inputs: Dict[str, Any]) -> None:
        self.step = step
        self.model: str = inputs["model"]
        self.instructions: Optional[str] = inputs.get("instructions")
        self.chunk_size: int = inputs["chunk_size"]
        self.max_concurrency: int = inputs["max_concurrency"]
        self.max_tokens: Optional[int] = inputs.get("max_summary_tokens")
        self.system: Optional[str] = inputs.get("system")
        self.response_format = response_format_field(step.action.inputs, inputs)
        # Part summaries stay text (they are combined), so only the final request gets the format.
        self.shared_fields = {name: inputs[name] for name in ("reasoning_effort",) if name in inputs}
        self.token_field = max_tokens_field(step.connection)
        self.pacer = step.new_pacer(self.max_concurrency, self.model)
        self.answers: List[Dict[str, Any]] = []

    def map_reduce(self, chunks: List[str]) -> str:
        summaries = self.summarize_all(chunks, "chunk")
        combined = PART_SEPARATOR.join(summaries)
        for round_number in range(1, MAX_REDUCE_ROUNDS + 1):
            if len(combined) <= self.chunk_size:
                break
            shorter = PART_SEPARATOR.join(self.summarize_all(
                split_text(combined, self.chunk_size), f"reduce round {round_number}, part"))
            if len(shorter) >= len(combined):
                break  # the summaries stopped shrinking; more rounds would not help
            combined = shorter
        return self.summarize(combined, COMBINER, final=True)

    def summarize_all(self, texts: List[str], label: str) -> List[str]:
        """The summary of every text, concurrently; the first failure is raised, naming its text."""
        concurrency = min(self.max_concurrency, len(texts))
        with connections_in_use(self.step.client, concurrency):
            outcomes = map_in_order(texts, lambda text: self.summarize(text, PART_SUMMARIZER),
                                    concurrency, stop_on_error=True)
        for position, (_, error) in enumerate(outcomes):
            if error is not None and not isinstance(error, Skipped):
                error = _naming_part(error, f"{label} {position + 1} of {len(texts)}")
                if isinstance(error, ConnectorError):
                    error.details["completed_parts"] = [
                        {"part": number, "of": len(texts), "summary": summary}
                        for number, (summary, failure) in enumerate(outcomes, start=1) if failure is None]
                    error.details["usage"] = self.usage()
                raise error
        return [summary for summary, _ in outcomes]

    def summarize(self, text: str, system_prompt: str, *, final: bool = False) -> str:
        """One summary; the final one (of the whole text) takes the response format."""
        instructions = self._system(system_prompt)
        if final and self.response_format is not None and self.response_format["type"] != "text":
            instructions = f"{instructions} {JSON_ANSWER}"
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages += [{"role": "system", "content": instructions}, {"role": "user", "content": text}]
        fields: Dict[str, Any] = {"messages": messages, **self.shared_fields}
        if self.max_tokens is not None:
            fields[self.token_field] = self.max_tokens
        if final and self.response_format is not None:
            fields["response_format"] = self.response_format
        answer = chat_completion(self.step, self.model, fields, pacer=for_request(self.pacer, fields),
                                 input_names={self.token_field: "max_summary_tokens"})
        self.answers.append(answer)  # list.append is atomic: safe from the worker threads
        content = first_content(answer)
        if not isinstance(content, str):
            raise InvalidResponseError("The model answered without summary text",
                                       code="missing_content", request_id=answer.get("request_id"))
        return content.strip()

    def usage(self) -> Dict[str, int]:
        return {**total_usage(answer.get("usage") for answer in self.answers),
                "requests": len(self.answers)}

    def _system(self, system_prompt: str) -> str:
        if not self.instructions:
            return system_prompt
        # A part summary is not the answer: it keeps what the instructions need, not their form.
        lead = PART_INSTRUCTIONS if system_prompt == PART_SUMMARIZER else FINAL_INSTRUCTIONS
        return f"{system_prompt} {lead} {self.instructions}"


def _naming_part(error: Exception, part: str) -> Exception:
    """The same error, its message prefixed with the part that failed (the type, status, code and
    request ID stay, so callers handle it like any other failure)."""
    if isinstance(error, ConnectorError):
        error.message = f"Summarizing {part} failed: {error.message}"
        error.args = (error.message,)
    return error
