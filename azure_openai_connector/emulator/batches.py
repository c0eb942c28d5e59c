"""The emulated Batch API: jobs that finish over a few polls, deterministically, scripted through
their own input so tests need no clock and no extra knobs.

- A job moves on each time it is fetched (`GET /batches/{id}`), never with wall time: it is
  `validating` when created, `in_progress` from the first fetch, and ends on fetch number
  `metadata["emulator_polls"]` (default 2); with 3 or more the fetch before the end shows
  `finalizing`.
- A line whose user message holds `[emulator:fail-400]` or `[emulator:fail-500]` gets that HTTP
  error (in the dialect of the route); `[emulator:timeout]` a `request_timeout` with no response.
- `metadata["emulator_outcome"] = "expire"` ends the job `expired` with its second half never run;
  a cancel ends it `cancelled` (on the next fetch) with what had not run yet. Lines never run go
  to the error file with `batch_expired` / `batch_cancelled`.
- Output and error lines come in a shuffled order, seeded by the job's number: as with the
  service, only `custom_id` ties an answer to its request.
- A finished example job, `batch_emulator_example` (three prompts), is there from the start.
- Broken input files fail the job with Azure's validation codes (`invalid_json_line`,
  `duplicate_custom_id`, `model_mismatch`, `url_mismatch`, `empty_file`, `too_many_tasks`), and a
  file starting with a byte order mark fails with Azure's misleading deployment message.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import chat_checks, responses, validation
from .call import Call
from .errors import AZURE, ServiceRefusal, azure_error, bad_request, openai_error
from .files import FileStore, StoredFile
from .handlers import CHAT_ROLES
from .reply import Reply, json_reply

EXAMPLE_BATCH_ID = "batch_emulator_example"
EXAMPLE_PROMPTS = ("What is a batch?", "Why is it half the price?", "When does it finish?")
COMPLETION_WINDOWS = ("24h",)
OPENAI_ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
                    "/v1/moderations", "/v1/images/generations", "/v1/images/edits", "/v1/videos")
# Azure documents "/chat/completions" at create and "/v1/chat/completions" in the lines.
AZURE_ENDPOINTS = ("/chat/completions", "/v1/chat/completions", "/responses", "/v1/responses")
MAX_LINES = {AZURE: 100_000, "openai": 50_000}
DEFAULT_POLLS = 2
MAX_POLLS = 50
FAIL_MARKERS = {"[emulator:fail-400]": 400, "[emulator:fail-500]": 500}
TIMEOUT_MARKER = "[emulator:timeout]"
BOM = b"\xef\xbb\xbf"
BOM_MESSAGE = ("The provided model deployment name is not a valid model deployment name. Make sure the "
               "deployment exists and is a Global Batch deployment.")
UNFINISHED = ("validating", "in_progress", "finalizing")
STOPPING = {"expire": "expired", "cancel": "cancelled"}
NOT_RUN_CODES = {"expired": "batch_expired", "cancelled": "batch_cancelled"}
NOT_RUN_MESSAGES = {"expired": "This request could not be executed before the completion window expired.",
                    "cancelled": "This request was not executed because the batch was cancelled."}


@dataclass
class Job:
    """One batch job and how far it has got."""

    serial: int
    dialect: str
    endpoint: str
    input_file_id: str
    metadata: Optional[Dict[str, str]]
    created_at: int
    lines: List[Dict[str, Any]]
    problems: List[Dict[str, Any]]
    polls_to_finish: int
    ending: str  # "complete" or "expire"; becomes "cancel" on a cancel
    batch_id: str = ""
    status: str = "validating"
    fetches: int = 0
    ran: int = 0  # lines run so far (in input order)
    moments: Dict[str, int] = field(default_factory=dict)
    output_file_id: Optional[str] = None
    error_file_id: Optional[str] = None
    succeeded: int = 0
    failed: int = 0

    def __post_init__(self) -> None:
        self.batch_id = self.batch_id or f"batch_emu{self.serial:010d}"

    def as_object(self) -> Dict[str, Any]:
        total = len(self.lines) if not self.problems else 0
        answer: Dict[str, Any] = {
            "id": self.batch_id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.problems} if self.problems else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + 24 * 3600,
        }
        for moment in ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"):
            answer[f"{moment}_at"] = self.moments.get(moment)
        if self.status in UNFINISHED or self.status == "cancelling":
            answer["request_counts"] = {"total": total, "completed": self.ran, "failed": 0}
        else:
            answer["request_counts"] = {"total": total, "completed": self.succeeded, "failed": self.failed}
        answer["metadata"] = self.metadata
        if self.dialect != AZURE and self.lines:
            answer["model"] = str(self.lines[0].get("body", {}).get("model", ""))
        # The service sends null for what has not happened yet; the spec types those fields
        # without null, and clients read a missing field the same way.
        return {name: value for name, value in answer.items() if value is not None}


class BatchStore:
    """Every batch job of one emulated resource; jobs read and write files in `files`."""

    def __init__(self, files: FileStore) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._jobs: Dict[str, Job] = {}
        self._serial = 0
        self._seed_example()

    def create(self, dialect: str, body: Dict[str, Any]) -> Job:
        input_file_id = validation.string(body, "input_file_id", required_field=True)
        endpoint = validation.string(body, "endpoint", required_field=True)
        validation.one_of("endpoint", endpoint, AZURE_ENDPOINTS if dialect == AZURE else OPENAI_ENDPOINTS)
        validation.one_of("completion_window", validation.string(body, "completion_window", required_field=True),
                          COMPLETION_WINDOWS)
        metadata = body.get("metadata")
        if metadata is not None and not (isinstance(metadata, dict) and all(
                isinstance(value, str) for value in metadata.values())):
            raise bad_request("Invalid 'metadata': expected an object of strings.", param="metadata",
                              code="invalid_type")
        stored = self.files.get(str(input_file_id))
        if stored is None:
            raise ServiceRefusal(404, f"No such File object: {input_file_id}", param="input_file_id")
        if stored.purpose != "batch":
            raise bad_request(f"The file {input_file_id} was not uploaded with purpose 'batch'.",
                              param="input_file_id", code="invalid_file_purpose")
        lines, problems = read_input(stored, dialect, str(endpoint))
        polls = _polls(metadata)
        ending = "expire" if (metadata or {}).get("emulator_outcome") == "expire" else "complete"
        with self._lock:
            self._serial += 1
            job = Job(self._serial, dialect, str(endpoint), stored.file_id, metadata, int(time.time()),
                      lines, problems, polls, ending)
            self._jobs[job.batch_id] = job
        return job

    def _seed_example(self) -> None:
        """A finished batch to look at (status, results) without running one first."""
        requests = "".join(json.dumps({"custom_id": f"{index:06d}", "method": "POST", "url": "/v1/chat/completions",
                                       "body": {"model": "gpt-4o-mini",
                                                "messages": [{"role": "user", "content": prompt}]}}) + "\n"
                           for index, prompt in enumerate(EXAMPLE_PROMPTS))
        stored = self.files.add("example_batch_input.jsonl", "batch", requests.encode("utf-8"))
        lines, _ = read_input(stored, "openai", "/v1/chat/completions")
        job = Job(0, "openai", "/v1/chat/completions", stored.file_id, {"example": "true"}, stored.created_at,
                  lines, [], 1, "complete", batch_id=EXAMPLE_BATCH_ID)
        self._finish(job, "completed")
        self._jobs[job.batch_id] = job

    def fetch(self, batch_id: str) -> Job:
        """The job as a poll sees it: each fetch moves it on one step."""
        with self._lock:
            job = self._find(batch_id)
            if job.status in UNFINISHED or job.status == "cancelling":
                self._advance(job)
            return job

    def cancel(self, batch_id: str) -> Job:
        """Stop a job (it ends at the next fetch); a finished job comes back unchanged."""
        with self._lock:
            job = self._find(batch_id)
            if job.status in UNFINISHED:
                job.status = "cancelling"
                job.ending = "cancel"
                job.moments["cancelling"] = _now()
            return job

    def listed(self, after: Optional[str], limit: int) -> Tuple[List[Job], bool]:
        """One page of jobs, newest first, after the job `after`; and whether more follow."""
        with self._lock:
            newest_first = sorted(self._jobs.values(), key=lambda job: job.serial, reverse=True)
        if after is not None:
            positions = [index for index, job in enumerate(newest_first) if job.batch_id == after]
            newest_first = newest_first[positions[0] + 1:] if positions else []
        return newest_first[:limit], len(newest_first) > limit

    def _find(self, batch_id: str) -> Job:
        job = self._jobs.get(batch_id)
        if job is None:
            raise ServiceRefusal(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return job

    def _advance(self, job: Job) -> None:
        job.fetches += 1
        if job.problems:
            job.status = "failed"
            job.moments["failed"] = _now()
            return
        if job.status == "cancelling":
            self._finish(job, "cancelled")
            return
        if job.fetches >= job.polls_to_finish:
            self._finish(job, STOPPING.get(job.ending, "completed"))
            return
        job.moments.setdefault("in_progress", _now())
        job.ran = len(job.lines) * job.fetches // job.polls_to_finish
        if job.fetches == job.polls_to_finish - 1 and job.polls_to_finish >= 3:
            job.status = "finalizing"
            job.moments["finalizing"] = _now()
        else:
            job.status = "in_progress"

    def _finish(self, job: Job, status: str) -> None:
        runs = len(job.lines)
        if status == "expired":
            runs = len(job.lines) // 2
        elif status == "cancelled":
            runs = job.ran
        outputs, errors = [], []
        for index, line in enumerate(job.lines):
            if index < runs:
                answer = run_line(job, index, line)
                ok = answer["response"] is not None and answer["response"]["status_code"] == 200
                job.succeeded += ok
                job.failed += not ok
                (outputs if ok else errors).append(answer)
            else:
                errors.append(_line_answer(job, index, line, None,
                                           {"code": NOT_RUN_CODES[status], "message": NOT_RUN_MESSAGES[status]}))
        shuffler = random.Random(job.serial)
        shuffler.shuffle(outputs)
        shuffler.shuffle(errors)
        job.ran = runs
        job.output_file_id = self._write(job, "output", outputs)
        # Azure names an (empty) error file even for a clean job.
        job.error_file_id = self._write(job, "error", errors) if errors or job.dialect == AZURE else None
        job.status = status
        job.moments[status] = _now()
        if status == "completed":
            job.moments.setdefault("finalizing", job.moments[status])

    def _write(self, job: Job, kind: str, answers: List[Dict[str, Any]]) -> str:
        data = "".join(json.dumps(answer, ensure_ascii=False) + "\n" for answer in answers).encode("utf-8")
        stored: StoredFile = self.files.add(f"{job.batch_id}_{kind}.jsonl", "batch_output", data)
        return stored.file_id


def read_input(stored: StoredFile, dialect: str, endpoint: str) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """The request lines of an input file, or the validation problems that fail the job."""
    data = stored.data
    if data.startswith(BOM):
        return [], [_problem("model_not_found", BOM_MESSAGE, None)]
    texts = [text for text in data.decode("utf-8", errors="replace").split("\n") if text.strip()]
    if not texts:
        return [], [_problem("empty_file", "The input file is empty.", None)]
    if len(texts) > MAX_LINES[dialect]:
        return [], [_problem("too_many_tasks", f"The input file has {len(texts)} requests; the most "
                                               f"allowed is {MAX_LINES[dialect]}.", None)]
    lines: List[Dict[str, Any]] = []
    problems: List[Dict[str, Any]] = []
    seen_ids = set()
    model = None
    for number, text in enumerate(texts, start=1):
        try:
            line = json.loads(text)
        except ValueError:
            problems.append(_problem("invalid_json_line", "This line is not valid JSON.", number))
            continue
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
            problems.append(_problem("invalid_request", "A line needs custom_id, method, url and body.", number))
            continue
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or custom_id in seen_ids:
            problems.append(_problem("duplicate_custom_id", f"The custom_id {custom_id!r} is used twice.", number))
        seen_ids.add(custom_id)
        if not _url_matches(str(line.get("url")), endpoint, dialect):
            problems.append(_problem("url_mismatch", f"The url {line.get('url')!r} does not match the batch's "
                                                     f"endpoint {endpoint!r}.", number))
        line_model = line["body"].get("model")
        if model is None:
            model = line_model
        elif line_model != model:
            problems.append(_problem("model_mismatch", "Every line of a batch must use the same model.", number))
        lines.append(line)
    return lines, problems


def run_line(job: Job, index: int, line: Dict[str, Any]) -> Dict[str, Any]:
    """What running one request line gives: a response with its status and body, or an error."""
    body = line["body"]
    azure = job.dialect == AZURE
    try:
        messages = validation.messages(body, CHAT_ROLES)
        validation.number(body, "temperature", 0, 2)
        limit = validation.integer(body, "max_completion_tokens", 1, None, None)
    except ServiceRefusal as refusal:
        return _line_answer(job, index, line, (refusal.status, refusal.body(job.dialect)), None)
    subject = responses.reply_subject(messages)
    if TIMEOUT_MARKER in subject:
        return _line_answer(job, index, line, None,
                            {"code": "request_timeout", "message": "The request timed out."})
    for marker, status in FAIL_MARKERS.items():
        if marker in subject:
            message = f"Emulated failure of this line ({status})."
            error = (azure_error(str(status) if status >= 500 else "BadRequest", message) if azure
                     else openai_error(message, "server_error" if status >= 500 else "invalid_request_error"))
            return _line_answer(job, index, line, (status, error), None)
    answer = responses.chat_completion(
        completion_id=f"chatcmpl-emubatch{job.serial:06d}{index:07d}",
        model=responses.AZURE_CHAT_MODEL if azure else str(body.get("model")),
        messages=messages, n=1, word_limit=limit, azure=azure,
        reasoning_tokens=chat_checks.reasoning_tokens(body, str(body.get("model"))))
    return _line_answer(job, index, line, (200, answer), None)


def _line_answer(job: Job, index: int, line: Dict[str, Any], response: Optional[Tuple[int, Any]],
                 error: Optional[Dict[str, str]]) -> Dict[str, Any]:
    return {
        "id": f"batch_req_emu{job.serial:06d}{index:07d}",
        "custom_id": line.get("custom_id"),
        "response": None if response is None else {
            "status_code": response[0], "request_id": f"req_batch{job.serial:06d}{index:07d}", "body": response[1]},
        "error": error,
    }


def _url_matches(url: str, endpoint: str, dialect: str) -> bool:
    if dialect != AZURE:
        return url == endpoint
    return _without_v1(url) == _without_v1(endpoint)


def _without_v1(path: str) -> str:
    return path[3:] if path.startswith("/v1/") else path


def _problem(code: str, message: str, line: Optional[int]) -> Dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _polls(metadata: Optional[Dict[str, str]]) -> int:
    text = (metadata or {}).get("emulator_polls", str(DEFAULT_POLLS))
    if not text.isdigit() or not 1 <= int(text) <= MAX_POLLS:
        raise bad_request(f"metadata.emulator_polls must be a whole number from 1 to {MAX_POLLS}.",
                          param="metadata", code="invalid_value")
    return int(text)


def _now() -> int:
    return int(time.time())


# --- handlers ------------------------------------------------------------------------------------


def create_batch(call: Call) -> Reply:
    return json_reply(200, call.batches.create(call.dialect, call.body()).as_object())


def retrieve_batch(call: Call) -> Reply:
    return json_reply(200, call.batches.fetch(call.params["batch_id"]).as_object())


def cancel_batch(call: Call) -> Reply:
    return json_reply(200, call.batches.cancel(call.params["batch_id"]).as_object())


def list_batches(call: Call) -> Reply:
    query = call.request.query
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise bad_request("Invalid 'limit': expected an integer from 1 to 100.", param="limit", code="invalid_value")
    jobs, has_more = call.batches.listed(query.get("after"), int(limit_text))
    objects = [job.as_object() for job in jobs]
    return json_reply(200, {"object": "list", "data": objects, "first_id": objects[0]["id"] if objects else None,
                            "last_id": objects[-1]["id"] if objects else None, "has_more": has_more})
