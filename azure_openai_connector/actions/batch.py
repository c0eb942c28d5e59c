"""Shared machinery for actions that send many requests at once: a rate-limit gate shared by the
whole batch (AIMD concurrency, the fallback of the quota pacer in pacing.py), an in-order
concurrent map on the process's worker pool, and usage totals."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar

from ..http import INITIAL_RETRY_DELAY, MAX_RETRY_AFTER

Item = TypeVar("Item")
Result = TypeVar("Result")
Outcome = Tuple[Optional[Result], Optional[Exception]]

# Waits are re-checked at least this often, so a missed wake-up can never block for long.
MAX_WAIT_SLICE = 1.0
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


class AdaptivePacer:
    """The `Pacer` of one batch: at most `limit` attempts in flight, and a pause for everyone
    after a 429.

    The limit starts at `max_concurrency`, halves (down to 1) on a rate limit, and rises by one
    after `limit * 2` successes in a row (additive increase, multiplicative decrease). The pause
    lasts until the server's retry-after moment (a short backoff without a hint): the other
    workers would only collect 429s of their own meanwhile, each costing a retry. A wait longer
    than `longest_pause` (a daily quota's 86400 s, say) pauses nobody: the HTTP layer refuses to
    wait that long too, so the request fails at once with the server's wait, and the others go on.
    """

    def __init__(self, max_concurrency: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 backoff_without_hint: float = INITIAL_RETRY_DELAY,
                 longest_pause: float = MAX_RETRY_AFTER) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._clock = clock
        self._sleep = sleep
        self._backoff_without_hint = backoff_without_hint
        self._longest_pause = longest_pause
        self._condition = threading.Condition()
        self._limit = max_concurrency
        self._lowest_limit = max_concurrency
        self._in_flight = 0
        self._waiting = 0
        self._successes_in_a_row = 0
        self._paused_until = float("-inf")
        self._pauses = 0
        # Bumped on every decrease: 429s from attempts started before it are the same signal.
        self._generation = 0
        self._attempt_generation = threading.local()

    @property
    def limit(self) -> int:
        """How many attempts may be in flight now."""
        with self._condition:
            return self._limit

    @property
    def lowest_limit(self) -> int:
        """The lowest limit this batch has run at."""
        with self._condition:
            return self._lowest_limit

    @property
    def pauses(self) -> int:
        """How many times a rate limit paused the whole batch."""
        with self._condition:
            return self._pauses

    @property
    def waiting(self) -> int:
        """How many callers are blocked in `before_attempt` now."""
        with self._condition:
            return self._waiting

    def widen(self, max_concurrency: int) -> None:
        """Allow up to `max_concurrency` in flight (a shared pacer serving a wider step)."""
        with self._condition:
            if max_concurrency > self.max_concurrency:
                self._limit += max_concurrency - self.max_concurrency
                self.max_concurrency = max_concurrency
                self._condition.notify_all()

    def before_attempt(self) -> None:
        """Block while the batch is paused or `limit` attempts are already in flight."""
        with self._condition:
            self._take_slot()

    def _take_slot(self) -> None:
        """With the lock held: wait out any pause and for a free slot, then take it."""
        self._waiting += 1
        try:
            while True:
                pause_left = self._paused_until - self._clock()
                if pause_left > 0:
                    self._sleep_unlocked(min(pause_left, MAX_WAIT_SLICE))
                elif self._in_flight >= self._limit:
                    self._condition.wait(MAX_WAIT_SLICE)
                else:
                    break
        finally:
            self._waiting -= 1
        self._in_flight += 1
        self._attempt_generation.value = self._generation

    def after_attempt(self, status: Optional[int], retry_after: Optional[float],
                      headers: Optional[Mapping[str, str]] = None) -> None:
        """Free the slot; on a 429 pause everyone and halve the limit, on success maybe raise it.
        (`headers`, the answer's, are for pacers that read rate-limit headers.)"""
        with self._condition:
            self._in_flight = max(0, self._in_flight - 1)
            if status == 429:
                self._on_rate_limit(retry_after)
            elif status is not None and status < 400:
                self._on_success()
            else:
                self._successes_in_a_row = 0
            self._condition.notify_all()

    def _refused_wait(self, retry_after: Optional[float]) -> bool:
        """Whether the server asked for a wait no request will make (the HTTP layer's cap)."""
        return retry_after is not None and retry_after > self._longest_pause

    def _on_rate_limit(self, retry_after: Optional[float]) -> None:
        self._successes_in_a_row = 0
        if self._refused_wait(retry_after):
            return  # a quota wall, not a rate: that request fails now, pausing others gains nothing
        wait = self._backoff_without_hint if retry_after is None else retry_after
        resume_at = self._clock() + max(wait, 0.0)
        if resume_at > self._paused_until:
            self._paused_until = resume_at
            self._pauses += 1
        started_in = getattr(self._attempt_generation, "value", self._generation)
        if started_in == self._generation and self._limit > 1:
            self._limit = max(1, self._limit // 2)
            self._lowest_limit = min(self._lowest_limit, self._limit)
            self._generation += 1

    def _on_success(self) -> None:
        self._successes_in_a_row += 1
        if self._limit < self.max_concurrency and self._successes_in_a_row >= self._limit * 2:
            self._limit += 1
            self._successes_in_a_row = 0

    def _sleep_unlocked(self, seconds: float) -> None:
        # A pause only ever grows, so nobody needs waking early: sleep without holding the lock.
        self._condition.release()
        try:
            self._sleep(seconds)
        finally:
            self._condition.acquire()


class Skipped(Exception):
    """The item was not run because an earlier one failed (with `stop_on_error`)."""


def map_in_order(items: Sequence[Item], function: Callable[[Item], Result], max_concurrency: int,
                 *, stop_on_error: bool = False, pool: Any = None) -> List[Outcome]:
    """`(result, None)` or `(None, error)` for each item, in input order, running `function` on at
    most `max_concurrency` threads of the process's worker pool. One item's exception never loses
    the others; with `stop_on_error`, items not yet started after a failure get `(None, Skipped())`.
    (`pool`: another WorkerPool than the process's, for tests.)

    The calling thread works through the items too and only ever waits for items already running:
    a nested call (a step inside another batch) makes progress even when every pool thread is busy.
    """
    run = _OrderedRun(items, function, stop_on_error)
    workers = min(max_concurrency, len(items))
    if workers > 1:
        if pool is None:
            from .worker_pool import worker_pool

            pool = worker_pool()
        for _ in range(workers - 1):
            pool.submit(run.work)
    run.work()
    return run.outcomes()


class _OrderedRun:
    """The items of one `map_in_order` call, taken one at a time by whichever thread is free."""

    def __init__(self, items: Sequence[Item], function: Callable[[Item], Result], stop_on_error: bool) -> None:
        self._items = items
        self._function = function
        self._stop_on_error = stop_on_error
        self._lock = threading.Lock()
        self._next = 0
        self._unfinished = len(items)
        self._finished = threading.Event()
        self._failed = False
        self._outcomes: List[Any] = [None] * len(items)
        if not items:
            self._finished.set()

    def work(self) -> None:
        """Run items until none is left to start."""
        while True:
            with self._lock:
                index = self._next
                if index >= len(self._items):
                    return
                self._next += 1
                skip = self._failed
            outcome = (None, Skipped()) if skip else self._run_one(self._items[index])
            with self._lock:
                self._outcomes[index] = outcome
                if self._stop_on_error and outcome[1] is not None and not isinstance(outcome[1], Skipped):
                    self._failed = True
                self._unfinished -= 1
                if self._unfinished == 0:
                    self._finished.set()

    def _run_one(self, item: Item) -> Outcome:
        try:
            return self._function(item), None
        except BaseException as error:  # noqa: BLE001 - handed back to the caller, item by item
            return None, error  # type: ignore[return-value]

    def outcomes(self) -> List[Outcome]:
        """Every outcome, once the items other threads took have finished too."""
        while not self._finished.wait(MAX_WAIT_SLICE):
            pass
        for _, error in self._outcomes:
            if error is not None and not isinstance(error, Exception):
                raise error  # KeyboardInterrupt, SystemExit: not an item's failure
        return list(self._outcomes)


def total_usage(usages: Iterable[Optional[Mapping[str, Any]]]) -> Dict[str, int]:
    """The token counts of several answers added up (missing counts count as 0)."""
    totals = dict.fromkeys(USAGE_FIELDS, 0)
    for usage in usages:
        for name in USAGE_FIELDS:
            value = usage.get(name) if isinstance(usage, Mapping) else None
            if isinstance(value, int) and not isinstance(value, bool):
                totals[name] += value
    return totals
