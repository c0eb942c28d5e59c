"""Forked workers (Celery prefork, gunicorn --preload, multiprocessing) never share the parent's
sockets: a parent that warmed a connection forks children whose answers must be their own."""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import Any, Dict, List, Tuple

import pytest

from azure_openai_connector import process_state
from azure_openai_connector.emulator import Emulator
from azure_openai_connector.runtime import Runtime

from support import API_KEY

pytestmark = pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="POSIX fork only")

CHILDREN = 4
PROMPTS_PER_CHILD = 100
CHILD_TIMEOUT_S = 120.0


def _ask_many(runtime: Runtime, connection: Dict[str, Any], child: int) -> Tuple[int, int, List[str]]:
    """(right answers, wrong answers, errors) for this child's unique prompts."""
    right = wrong = 0
    failures: List[str] = []
    for index in range(PROMPTS_PER_CHILD):
        prompt = f"child {child} prompt {index} pid {os.getpid()}"
        try:
            result = runtime.run("create_chat_completion", connection,
                                 {"messages": [{"role": "user", "content": prompt}]})
        except Exception as error:  # noqa: BLE001 - counted, reported by the parent
            failures.append(f"{type(error).__name__}: {error}")
            continue
        if result["content"] == f"Emulated reply to: {prompt}":
            right += 1
        else:
            wrong += 1
    return right, wrong, failures


def _child(runtime: Runtime, connection: Dict[str, Any], child: int, queue: Any) -> None:
    queue.put((child, _ask_many(runtime, connection, child)))


@pytest.mark.slow
@pytest.mark.parametrize("round_number", range(5))
def test_forked_children_never_get_another_process_answer(round_number: int) -> None:
    context = multiprocessing.get_context("fork")
    with Emulator(api_key=API_KEY) as emulator:
        connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": emulator.url}
        runtime = Runtime()
        try:
            # The parent warms the connection: its pool now holds a keep-alive socket.
            warm = runtime.run("create_chat_completion", connection,
                               {"messages": [{"role": "user", "content": "parent"}]})
            assert warm["content"] == "Emulated reply to: parent"
            queue = context.Queue()
            children = [context.Process(target=_child, args=(runtime, connection, child, queue))
                        for child in range(CHILDREN)]
            for process in children:
                process.start()
            outcomes = dict(queue.get(timeout=CHILD_TIMEOUT_S) for _ in children)
            for process in children:
                process.join(timeout=CHILD_TIMEOUT_S)
                assert process.exitcode == 0
            # The parent's own socket still answers the parent.
            again = runtime.run("create_chat_completion", connection,
                                {"messages": [{"role": "user", "content": "parent again"}]})
            assert again["content"] == "Emulated reply to: parent again"
        finally:
            runtime.close()
    assert sorted(outcomes) == list(range(CHILDREN))
    for child, (right, wrong, failures) in outcomes.items():
        assert (child, wrong, failures) == (child, 0, [])
        assert right == PROMPTS_PER_CHILD


def test_locks_held_at_fork_are_renewed_in_the_child() -> None:
    """A lock another thread held when fork() ran would stay locked forever in the child."""
    runtime = Runtime()
    try:
        holding = threading.Event()
        release = threading.Event()

        def hold_lock() -> None:
            with runtime._lock:  # noqa: SLF001 - the state under test
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold_lock)
        holder.start()
        assert holding.wait(10)
        context = multiprocessing.get_context("fork")
        queue = context.Queue()

        def child() -> None:
            queue.put(runtime._lock.acquire(timeout=5))  # noqa: SLF001

        process = context.Process(target=child)
        process.start()
        try:
            assert queue.get(timeout=30) is True
        finally:
            release.set()
            holder.join(10)
            process.join(30)
        assert process.exitcode == 0
    finally:
        runtime.close()


def test_renewal_callbacks_run_once_per_fork_in_the_child_only() -> None:
    class Renewed:
        def __init__(self) -> None:
            self.renewals = 0

        def after_fork_in_child(self) -> None:
            self.renewals += 1

    owner = Renewed()
    process_state.renew_after_fork(owner)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=lambda: queue.put(owner.renewals))
    process.start()
    assert queue.get(timeout=30) == 1
    process.join(30)
    assert owner.renewals == 0
