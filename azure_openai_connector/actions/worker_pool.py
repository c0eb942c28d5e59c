"""One long-lived pool of worker threads per process, shared by every batch step.

A pool per step paid for starting up to 64 threads on every step and left them to die after it.
This one starts a thread only when a task finds none idle (so it grows to the concurrency the steps
actually use), never holds more than `max_threads`, and lets a thread go after it has been idle for
`idle_seconds`. A forked child starts with an empty pool: the parent's threads do not exist there.
Tasks must not raise (map_in_order's never do): a task's exception would only be logged.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Deque

from .. import process_state
from ..process_state import ProcessSingleton

logger = logging.getLogger(__name__)

MAX_THREADS = 256
IDLE_SECONDS = 300.0

Task = Callable[[], None]


class WorkerPool:
    """Runs submitted tasks on up to `max_threads` daemon threads, started on demand."""

    def __init__(self, max_threads: int = MAX_THREADS, idle_seconds: float = IDLE_SECONDS) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.max_threads = max_threads
        self.idle_seconds = idle_seconds
        self._renew()
        process_state.renew_after_fork(self)

    def _renew(self) -> None:
        self._lock = threading.Lock()
        self._work_arrived = threading.Condition(self._lock)
        self._tasks: Deque[Task] = collections.deque()
        self._threads = 0
        self._idle = 0
        self._started = 0

    def after_fork_in_child(self) -> None:
        """Start empty: the parent's threads and queued tasks are not the child's."""
        self._renew()

    @property
    def threads(self) -> int:
        """How many worker threads are alive now."""
        with self._lock:
            return self._threads

    @property
    def idle(self) -> int:
        """How many worker threads are waiting for a task now."""
        with self._lock:
            return self._idle

    @property
    def threads_started(self) -> int:
        """How many worker threads this process has started in all (reuse keeps it flat)."""
        with self._lock:
            return self._started

    def submit(self, task: Task) -> None:
        """Queue `task`; start a thread for it when no idle one is left and the bound allows."""
        with self._lock:
            self._tasks.append(task)
            if len(self._tasks) > self._idle and self._threads < self.max_threads:
                self._threads += 1
                self._started += 1
                thread = threading.Thread(target=self._work, name=f"batch-worker-{self._started}", daemon=True)
                thread.start()
            else:
                self._work_arrived.notify()

    def _work(self) -> None:
        while True:
            with self._lock:
                idle_until = time.monotonic() + self.idle_seconds
                while not self._tasks:
                    idle_left = idle_until - time.monotonic()
                    if idle_left <= 0:
                        self._threads -= 1
                        return
                    self._idle += 1
                    self._work_arrived.wait(idle_left)
                    self._idle -= 1
                task = self._tasks.popleft()
            try:
                task()
            except Exception:  # noqa: BLE001 - the pool must outlive a broken task
                logger.exception("a batch task failed")


#: The process's worker pool, built on first use.
worker_pool = ProcessSingleton(WorkerPool)
