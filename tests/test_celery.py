"""The Celery integration on the real thing: Debian's redis-server on a free loopback port, the
emulator, and a prefork `celery worker` (2 processes) importing `celery_worker_app`.

Connections travel by reference ("conn:azure"), resolved in the worker; the proof ends with the
key absent from every Redis value and from the worker's log.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from azure_openai_connector import errors
from azure_openai_connector.celery import BATCH_WAIT_EXHAUSTED, connector_tasks, fan_out, redacted_arguments
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.envelope import retry_decision, unwrap
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

import celery_worker_app

TESTS = Path(__file__).resolve().parent
# Characters that JSON and repr escape, so every encoded form of the key differs from the raw one.
CELERY_KEY = 'celery+key/"7f3a9c1e5b2d4680"'
REDIS_READY_SECONDS = 15.0
WORKER_READY_SECONDS = 90.0
STOP_SECONDS = 30.0
RESULT_SECONDS = 120.0
LOG_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05
PORT_ATTEMPTS = 5

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None or not hasattr(os, "fork"),
                                reason="needs Debian's redis-server (apt-get install redis-server) and fork")


# --- the servers, once per session -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen, *, group: bool = False) -> None:
    """Stop a process we started, by its pid (and its process group: a worker's pool children)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)
    if group:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # pool children left behind, if any
        except ProcessLookupError:
            pass


def poll_until(ready: Callable[[], bool], seconds: float, alive: Callable[[], bool]) -> bool:
    """Whether `ready()` came true within `seconds` while `alive()` stayed true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive():
        if ready():
            return True
        time.sleep(POLL_SECONDS)
    return False


def redis_answers(port: int) -> bool:
    import redis

    try:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("redis")
    for _ in range(PORT_ATTEMPTS):  # another process may take the free port first
        port = free_port()
        log = open(directory / f"redis-{port}.log", "wb")
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--rdbcompression", "no", "--dir", str(directory)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if poll_until(lambda: redis_answers(port), REDIS_READY_SECONDS, lambda: process.poll() is None):
            break
        stop(process)
        log.close()
    else:
        pytest.fail(f"redis-server did not start; see {directory}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def celery_emulator() -> Iterator[Emulator]:
    with Emulator(api_key=CELERY_KEY) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def worker_log(redis_url: str, celery_emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A prefork worker with 2 processes, answering pings; yields the path of its log."""
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    log = open(log_path, "wb")
    env = {**os.environ, "AOC_CELERY_REDIS_URL": redis_url, "AOC_CELERY_EMULATOR_URL": celery_emulator.url,
           "AOC_CELERY_API_KEY": CELERY_KEY,
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_worker_app", "worker", "-P", "prefork", "-c", "2",
         "--loglevel", "DEBUG", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"aoc-tests-{os.getpid()}@127.0.0.1"],
        cwd=TESTS, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        with caller_app(redis_url) as app:
            if not poll_until(lambda: bool(app.control.ping(timeout=0.5)), WORKER_READY_SECONDS,
                              lambda: process.poll() is None):
                pytest.fail(f"the celery worker did not answer a ping:\n{log_path.read_text()[-3000:]}")
        yield log_path
    finally:
        stop(process, group=True)
        log.close()


@contextmanager
def caller_app(redis_url: str) -> Iterator[Any]:
    """The app as a caller builds it, closed after use: a process holding an open broker connection
    cannot fork a child safely (kombu's after-fork cleanup in the child reads the parent's socket)."""
    import kombu.pools

    app = celery_worker_app.build_app(redis_url)
    try:
        yield app
    finally:
        app.close()
        kombu.pools.reset()  # the process-wide pools too: control and result replies use them


@pytest.fixture(scope="module")
def worker(worker_log: Path, redis_url: str) -> Iterator[Tuple[Any, Path]]:
    """(the caller's app, the worker's log), the app closed when this module is done."""
    with caller_app(redis_url) as app:
        yield app, worker_log


@pytest.fixture
def emulator(celery_emulator: Emulator) -> Emulator:
    """The session's emulator with no scripted faults and no requests recorded yet."""
    celery_emulator.reset()
    return celery_emulator


def key_forms(key: str) -> List[bytes]:
    """The key raw, JSON- and repr-escaped, and each of those in base64 at all 3 alignments (a
    message body is base64 of JSON: one of the 3 aligned encodings is in it whatever the offset)."""
    texts = {key.encode(), json.dumps(key)[1:-1].encode(), repr(key)[1:-1].encode()}
    forms = set(texts)
    for text in texts:
        for shift in range(3):
            aligned = text[shift:][:len(text[shift:]) // 3 * 3]
            forms.add(base64.b64encode(aligned))
            forms.add(base64.urlsafe_b64encode(aligned))
    return sorted(forms)


def wait_for_log(log_path: Path, text: str) -> bool:
    return poll_until(lambda: text in log_path.read_text(errors="replace"), LOG_WAIT_SECONDS, lambda: True)


# --- a success ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["conn:azure", "conn:openai"])
def test_a_step_runs_on_a_worker_with_a_connection_by_reference(reference, worker, emulator):
    app, _ = worker
    tasks = connector_tasks(app)
    outcome = tasks.run_action.delay("create_chat_completion", reference,
                                     {"messages": [{"role": "user", "content": "queued"}]}).get(timeout=RESULT_SECONDS)
    assert outcome["ok"] is True
    assert unwrap(outcome)["content"] == "Emulated reply to: queued"
    assert emulator.request_count == 1


# --- every error kind, rebuilt on the caller's side ---------------------------------------------------


RAW_CHAT_URL = "/deployments/d/chat/completions"


def raw_chat(marker: str, **extra: Any) -> Dict[str, Any]:
    return {"url": RAW_CHAT_URL, "method": "POST",
            "data": {"messages": [{"role": "user", "content": marker}]}, **extra}


# kind: (fault, extra raw_request inputs, how many times the engine runs the step)
API_ERROR_CASES: Dict[str, Tuple[Fault, Dict[str, Any], int]] = {
    "bad_request": (Fault.bad_request(f"Your key {CELERY_KEY} is fine, the body is not", param="messages",
                                      code="invalid_value"), {}, 1),
    "authentication": (Fault.status(401, message=f"Incorrect API key provided: {CELERY_KEY}"), {}, 1),
    "permission_denied": (Fault.status(403), {}, 1),
    "not_found": (Fault.not_found(), {}, 1),
    "rate_limit": (Fault.rate_limit(retry_after_ms=200), {}, 2),
    "quota_exceeded": (Fault.insufficient_quota(), {}, 1),
    "content_filter": (Fault.content_filter_prompt(), {}, 1),
    "server_error": (Fault.status(500, message=f"boom {CELERY_KEY}"), {}, 2),
    "api_error": (Fault.status(418), {}, 1),
    "invalid_response": (Fault.malformed(), {}, 1),
    "redirect_not_followed": (Fault.redirect("http://127.0.0.2:9/elsewhere"), {}, 1),
    "connection_error": (Fault.drop(), {}, 2),
    "timeout": (Fault.slow(2), {"timeout": 300}, 2),
}
# Not raised by a step: the base class itself, and a broken manifest (refused at import); and
# the batch actions' own kinds, which need a batch on the emulator (tested with those actions);
# and the chat actions' unsupported_parameter (raw_request passes that 400 on as bad_request),
# whose crossing of a process boundary test_error_transport proves like every other class's;
# and entra_token, which needs a token service (tests/test_keyless.py runs one on the emulator);
# and batch_wait_exhausted, which the wait_for_batch task returns, not a step (tested below).
NOT_FROM_A_STEP = {"connector_error", "manifest_error", "not_processed", "batch_not_finished",
                   "unsupported_parameter", "entra_token", "batch_wait_exhausted"}


def test_every_error_kind_has_a_celery_case():
    from test_error_transport import CLASSES

    assert {c.kind for c in CLASSES} == set(API_ERROR_CASES) | {"invalid_input"} | NOT_FROM_A_STEP


def run_locally(emulator: Emulator, inputs: Dict[str, Any]) -> errors.ConnectorError:
    """The same step in this process, with the connection by value: the error to compare with."""
    runtime = Runtime()
    try:
        with pytest.raises(errors.ConnectorError) as raised:
            runtime.run("raw_request", {"api_key": CELERY_KEY, "organization": "contoso",
                                        "endpoint": emulator.url}, inputs)
    finally:
        runtime.close()
    return raised.value


@pytest.mark.parametrize("kind", sorted(API_ERROR_CASES))
def test_every_api_error_kind_is_rebuilt_typed_on_the_callers_side(kind, worker, emulator):
    app, log_path = worker
    fault, extra, engine_runs = API_ERROR_CASES[kind]
    marker = f"celery case {kind}"
    emulator.script(fault, times=None, match=marker)
    inputs = raw_chat(marker, **extra)
    result = connector_tasks(app).run_action.delay("raw_request", "conn:azure", inputs)
    outcome = result.get(timeout=RESULT_SECONDS)
    assert outcome["ok"] is False
    with pytest.raises(errors.ConnectorError) as raised:
        unwrap(outcome)
    rebuilt = raised.value
    # Retried by the engine only where the envelope says so: one run, or one retry then the error.
    assert sum(1 for r in emulator.requests if marker in r.text) == engine_runs
    local = run_locally(emulator, inputs)
    assert type(rebuilt) is type(local)
    assert rebuilt.kind == kind
    expected = local.to_dict()
    if isinstance(local, errors.ApiError):
        # The local run came right after: its request id is the worker's last one plus one.
        assert re.fullmatch(r"req_[0-9a-f]{16}", rebuilt.request_id)
        assert int(local.request_id[4:], 16) == int(rebuilt.request_id[4:], 16) + 1
        expected["request_id"] = rebuilt.request_id
        assert rebuilt.status == local.status is not None
    assert rebuilt.to_dict() == expected
    if engine_runs > 1:
        countdown = 0.2 if kind == "rate_limit" else celery_worker_app.TEST_FIRST_RETRY_DELAY
        assert wait_for_log(log_path, f"[{result.id}] retry: Retry in {countdown}s"), (
            f"no retry after {countdown}s logged for {result.id}")


def test_invalid_input_and_an_unknown_reference_are_rebuilt_with_every_path(worker, emulator):
    app, _ = worker
    outcome = connector_tasks(app).run_action.delay(
        "create_chat_completion", "conn:staging", {"temperature": 9}).get(timeout=RESULT_SECONDS)
    with pytest.raises(errors.InputValidationError) as raised:
        unwrap(outcome)
    assert raised.value.errors == [
        {"path": "connection", "message": "no plugin resolved the connection reference 'conn:staging'"},
        {"path": "temperature", "message": "9 is greater than the maximum of 2"},
    ]
    assert emulator.request_count == 0


# --- fan-outs -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_2000_prompt_fan_out_over_two_prefork_workers_merges_in_order(worker, emulator):
    app, _ = worker
    prompts = [f"fan-out prompt {number}" for number in range(2000)]
    result = unwrap(fan_out(app, "conn:azure", {"prompts": prompts, "max_tokens": 30}).get(timeout=RESULT_SECONDS))
    assert [item["index"] for item in result["results"]] == list(range(2000))
    assert [item["prompt"] for item in result["results"]] == prompts
    assert [item["content"] for item in result["results"]] == [f"Emulated reply to: {p}" for p in prompts]
    assert [item["error"] for item in result["results"]] == [None] * 2000
    usage = {name: sum(item["usage"][name] for item in result["results"])
             for name in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert result["totals"] == {"succeeded": 2000, "failed": 0, **usage}
    assert result["model"] == load_manifest().action("create_multiple_chat_completions").inputs.default("model")
    assert emulator.request_count == 2000


def test_a_small_fan_out_with_failed_prompts_keeps_them_in_place(worker, emulator):
    app, _ = worker
    prompts = [f"small fan-out {number}" for number in range(5)]
    emulator.script(Fault.content_filter_prompt(), times=None, match=prompts[3])
    merged = fan_out(app, "conn:openai", {"prompts": prompts}, max_prompts=2).get(timeout=RESULT_SECONDS)
    result = unwrap(merged)
    assert [item["index"] for item in result["results"]] == [0, 1, 2, 3, 4]
    assert [item["error"]["type"] if item["error"] else None for item in result["results"]] == [
        None, None, None, "content_filter", None]
    assert (result["totals"]["succeeded"], result["totals"]["failed"]) == (4, 1)


def test_a_fan_out_with_bad_inputs_is_refused_before_anything_is_queued(worker, emulator):
    app, _ = worker
    prompts = ["fine"] * 1200
    prompts[700] = ""
    with pytest.raises(errors.InputValidationError) as raised:
        fan_out(app, "conn:azure", {"prompts": prompts})
    assert raised.value.errors == [{"path": "prompts/700", "message": "is 0 characters long; at least 1 required"}]


def test_a_fan_out_whose_steps_are_refused_in_the_worker_fails_with_that_error(worker, emulator):
    app, _ = worker
    inputs = {"prompts": ["a", "b", "c"], "system": "be brief", "model": "gpt-3.5-turbo-instruct"}
    outcome = fan_out(app, "conn:openai", inputs, max_prompts=2).get(timeout=RESULT_SECONDS)
    with pytest.raises(errors.InputValidationError) as raised:
        unwrap(outcome)
    assert [problem["path"] for problem in raised.value.errors] == ["system"]
    assert emulator.request_count == 0


# --- waiting for a batch -------------------------------------------------------------------------


BATCH_POLL_SECONDS = 0.1


def submit_on_worker(app: Any, prompts: List[str], polls: int) -> str:
    """A batch submitted through the worker that finishes on status fetch number `polls`."""
    submitted = connector_tasks(app).run_action.delay(
        "submit_batch", "conn:azure", {"prompts": prompts, "metadata": {"emulator_polls": str(polls)}},
    ).get(timeout=RESULT_SECONDS)
    return unwrap(submitted)["batch_id"]


def status_fetches(emulator: Emulator, batch_id: str) -> int:
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path.endswith(f"/batches/{batch_id}"))


def test_wait_for_batch_polls_until_finished_and_returns_the_results(worker, emulator):
    app, log_path = worker
    tasks = connector_tasks(app)
    prompts = ["batch wait one", "batch wait two", "batch wait three"]
    batch_id = submit_on_worker(app, prompts, polls=3)
    waited = tasks.wait_for_batch.delay("conn:azure", batch_id, poll_seconds=BATCH_POLL_SECONDS, max_polls=10)
    outcome = waited.get(timeout=RESULT_SECONDS)
    polled = status_fetches(emulator, batch_id)
    assert outcome["ok"] is True, outcome
    # Finished on the 3rd status fetch: the task ran 3 times (get_batch_results may fetch it too).
    assert polled >= 3
    assert wait_for_log(log_path, f"polling batch {batch_id} on connection 'conn:azure' (poll 3 of 10)")
    assert f"polling batch {batch_id} on connection 'conn:azure' (poll 4 of 10)" not in log_path.read_text(
        errors="replace")
    assert wait_for_log(log_path, f"[{waited.id}] retry: Retry in {BATCH_POLL_SECONDS}s")
    direct = tasks.run_action.delay("get_batch_results", "conn:azure", {"batch_id": batch_id}).get(
        timeout=RESULT_SECONDS)
    assert outcome == direct
    assert [item["prompt"] for item in unwrap(outcome)["results"]] == prompts


def test_wait_for_batch_out_of_polls_returns_a_typed_failure_not_retried(worker, emulator):
    app, _ = worker
    batch_id = submit_on_worker(app, ["batch wait forever"], polls=5)
    outcome = connector_tasks(app).wait_for_batch.delay(
        "conn:azure", batch_id, poll_seconds=BATCH_POLL_SECONDS, max_polls=2).get(timeout=RESULT_SECONDS)
    assert outcome["ok"] is False
    assert outcome["error"]["type"] == BATCH_WAIT_EXHAUSTED
    assert outcome["error"]["details"] == {"batch_id": batch_id, "status": "in_progress", "polls": 2}
    assert retry_decision(outcome) == (False, None)
    with pytest.raises(errors.BatchWaitExhaustedError) as raised:
        unwrap(outcome)
    assert raised.value.kind == BATCH_WAIT_EXHAUSTED and raised.value.details["batch_id"] == batch_id
    assert status_fetches(emulator, batch_id) == 2


# --- argument reprs ---------------------------------------------------------------------------------


def test_argument_reprs_never_show_a_key_passed_by_value():
    from celery import Celery

    from azure_openai_connector.celery import register_tasks

    app = Celery("aoc_repr_tests", broker="memory://", backend="cache+memory://")
    tasks = register_tasks(app)
    connection = {"api_key": CELERY_KEY, "organization": "contoso"}
    inputs = {"messages": [{"role": "user", "content": f"my key is {CELERY_KEY}"}]}
    try:
        tasks.run_action.apply_async(args=("create_chat_completion", connection, inputs))
        fan_out(tasks, connection, {"prompts": ["a", "b", "c"]}, max_prompts=2)  # a chord's steps too
        reprs = []
        with app.connection_for_write() as connection_to_broker:
            with connection_to_broker.SimpleQueue("celery") as queue:
                for _ in range(3):
                    message = queue.get(timeout=10)
                    reprs.append((message.headers["argsrepr"], message.headers["kwargsrepr"]))
                    message.ack()
    finally:
        app.close()
    assert reprs == [
        ("('create_chat_completion', {'api_key': '***', 'organization': 'contoso'}, {'messages': [{...}]})",
         "{}"),
        ("('create_multiple_chat_completions', {'api_key': '***', 'organization': 'contoso'}, "
         "{'prompts': ['a', 'b']})", "{}"),
        ("('create_multiple_chat_completions', {'api_key': '***', 'organization': 'contoso'}, "
         "{'prompts': ['c']})", "{}"),
    ]
    assert redacted_arguments(("create_chat_completion", connection, inputs)) == (
        "create_chat_completion", {"api_key": "***", "organization": "contoso"},
        {"messages": [{"role": "user", "content": "my key is ***"}]})
    assert redacted_arguments(["conn:azure", {"api_key": None}]) == ["conn:azure", {"api_key": None}]


# --- last: the key is nowhere in Redis nor in the worker's log --------------------------------------------


def test_the_key_is_in_no_redis_value_and_not_in_the_worker_log(worker, redis_url):
    import redis

    app, log_path = worker
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    scanned = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "--scan"], capture_output=True,
                             check=True, timeout=30)
    keys = [key for key in scanned.stdout.split(b"\n") if key]
    assert any(key.startswith(b"celery-task-meta-") for key in keys), keys
    client = redis.Redis(host="127.0.0.1", port=int(port))
    values: List[bytes] = []
    for key in keys:
        dumped: Optional[bytes] = client.dump(key)
        values.append(key + b"=" + (dumped or b""))
        kind = client.type(key)
        if kind == b"string":
            values.append(client.get(key) or b"")
        elif kind == b"list":
            values.extend(client.lrange(key, 0, -1))
        elif kind == b"hash":
            values.extend(field + b"=" + value for field, value in client.hgetall(key).items())
        elif kind == b"set":
            values.extend(client.smembers(key))
        elif kind == b"zset":
            values.extend(client.zrange(key, 0, -1))
    everything = b"\n".join(values)
    assert b"Emulated reply to:" in everything  # the values really were read (not compressed away)
    assert b"Incorrect API key provided: ***" in everything  # an error quoting the key, redacted
    log = log_path.read_bytes()
    assert b"azure_openai_connector.run_action" in log and b"on connection 'conn:azure'" in log
    for form in key_forms(CELERY_KEY):
        assert form not in everything, f"the key ({form!r}) is in a Redis value"
        assert form not in log, f"the key ({form!r}) is in the worker's log"
