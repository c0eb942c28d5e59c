"""Shared machinery for actions that send many requests at once: a rate-limit gate shared by the
whole batch (AIMD concurrency), an in-order concurrent map, and usage totals."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    workers would only collect 429s of their own meanwhile, each costing a retry.
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

    def before_attempt(self) -> None:
        """Block while the batch is paused or `limit` attempts are already in flight."""
        with self._condition:
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

    def after_attempt(self, status: Optional[int], retry_after: Optional[float]) -> None:
        """Free the slot; on a 429 pause everyone and halve the limit, on success maybe raise it."""
        with self._condition:
            self._in_flight = max(0, self._in_flight - 1)
            if status == 429:
                self._on_rate_limit(retry_after)
            elif status is not None and status < 400:
                self._on_success()
            else:
                self._successes_in_a_row = 0
            self._condition.notify_all()

    def _on_rate_limit(self, retry_after: Optional[float]) -> None:
        self._successes_in_a_row = 0
        wait = self._backoff_without_hint if retry_after is None else retry_after
        resume_at = self._clock() + min(max(wait, 0.0), self._longest_pause)
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
                 *, stop_on_error: bool = False) -> List[Outcome]:
    """`(result, None)` or `(None, error)` for each item, in input order, running `function` on at
    most `max_concurrency` threads. One item's exception never loses the others; with
    `stop_on_error`, items not yet started after a failure get `(None, Skipped())`."""
    failed = threading.Event()

    def outcome(item: Item) -> Outcome:
        if failed.is_set():
            return None, Skipped()
        try:
            return function(item), None
        except Exception as error:  # noqa: BLE001 - handed back to the caller, item by item
            if stop_on_error:
                failed.set()
            return None, error

    workers = min(max_concurrency, len(items))
    if workers <= 1:
        return [outcome(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
        return list(pool.map(outcome, items))


def total_usage(usages: Iterable[Optional[Mapping[str, Any]]]) -> Dict[str, int]:
    """The token counts of several answers added up (missing counts count as 0)."""
    totals = dict.fromkeys(USAGE_FIELDS, 0)
    for usage in usages:
        for name in USAGE_FIELDS:
            value = usage.get(name) if isinstance(usage, Mapping) else None
            if isinstance(value, int) and not isinstance(value, bool):
                totals[name] += value
    return totals
