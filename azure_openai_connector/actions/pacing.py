"""Pacing a deployment's requests to stay just under its quota, instead of learning it from 429s.

Azure and OpenAI send `x-ratelimit-limit/remaining/reset-requests` and `-tokens` on every answer
(api-notes-2026, section 8). From them the quota pacer learns each per-minute budget (-1 or 0
mean unknown) and spaces attempts so that requests and estimated tokens both flow at just under
`limit / 60` a second, the tokens estimated as Azure does at arrival: prompt characters / 4 plus
the completion allowance. (Not `(limit - remaining) / reset`: Azure rounds its reset to whole
seconds, which makes that ratio meaningless while little is spent.) Until a budget is known (no headers yet, or never) it behaves as the AIMD pacer it
extends. One pacer serves every step on a deployment in a process; an engine can share one across
workers through the `batch_pacer` hook.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .. import process_state
from ..process_state import ProcessSingleton
from .batch import MAX_WAIT_SLICE, AdaptivePacer

# The share of a learned budget the pacer aims at: close enough to run at the quota, far enough
# that arrival jitter and a slightly low token estimate do not cost 429s.
TARGET_SHARE = 0.97
# A 429 while pacing means the budget or the estimate was off: aim this much lower, then climb
# back by RECOVERY_STEP per success (never above TARGET_SHARE, never below LOWEST_SHARE).
SHARE_CUT = 0.9
RECOVERY_STEP = 0.002
LOWEST_SHARE = 0.05
# Azure enforces a minute's budget over windows of 1-10 s: never send more at once than a fifth of
# a second's worth (spacing, not bursts, is what keeps up the rate; threads are there to wait).
BURST_SECONDS = 0.2
CHARACTERS_PER_TOKEN = 4
MAX_SHARED_PACERS = 256

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_DURATION_SCALE = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: Optional[str]) -> Optional[float]:
    """Seconds from a reset header: a bare number of seconds (Azure) or a duration such as
    `6m0s`, `1.5s` or `17ms` (OpenAI); None when absent or unreadable."""
    if text is None:
        return None
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _DURATION_SCALE[unit] for number, unit in parts)


def budget_limit(headers: Mapping[str, str], kind: str) -> Optional[int]:
    """One per-minute budget ("requests" or "tokens") from an answer's headers; None when they do
    not tell (missing, unreadable, or the -1 and 0 some answers carry)."""
    try:
        limit = int(headers.get(f"x-ratelimit-limit-{kind}") or "")
    except ValueError:
        return None
    return limit if limit > 0 else None


def estimated_tokens(fields: Mapping[str, Any]) -> int:
    """The tokens Azure counts against TPM when a chat request arrives: message characters / 4
    (rounded up) plus `max_completion_tokens` (or `max_tokens`)."""
    characters = 0
    for message in fields.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            characters += len(content)
    prompt = fields.get("prompt")
    for text in ([prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else ()):
        if isinstance(text, str):
            characters += len(text)
    allowance = fields.get("max_completion_tokens", fields.get("max_tokens"))
    allowance = allowance if isinstance(allowance, int) and not isinstance(allowance, bool) else 0
    return math.ceil(characters / CHARACTERS_PER_TOKEN) + allowance


class QuotaPacer(AdaptivePacer):
    """AIMD concurrency (the fallback), plus spacing to the budgets the answers' headers report.

    Spacing is a GCRA schedule per budget: an attempt costing `c` (1 request, its estimated
    tokens) may start once both schedules allow it, and pushes each one on by `c / rate`, where
    rate is `limit / 60` a second times the share aimed at; up to a second's budget may go at
    once. While pacing, a 429 pauses everyone until its retry-after and lowers the share instead
    of halving the concurrency (several workers on one quota settle at their part of it).
    """

    def __init__(self, max_concurrency: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, **options: Any) -> None:
        super().__init__(max_concurrency, clock=clock, sleep=sleep, **options)
        self._limits: Dict[str, int] = {}
        self._schedule: Dict[str, float] = {}
        self._share = TARGET_SHARE
        self._last_tokens = 0

    @property
    def limits(self) -> Dict[str, int]:
        """The learned per-minute budgets ("requests", "tokens"); empty before any headers."""
        with self._condition:
            return dict(self._limits)

    @property
    def share(self) -> float:
        """The share of the learned rates the pacer aims at now."""
        with self._condition:
            return self._share

    def for_request(self, tokens: int) -> "MeteredRequest":
        """The pacer of one request whose attempts each cost `tokens` estimated tokens."""
        return MeteredRequest(self, tokens)

    def before_attempt(self, tokens: int = 0) -> None:
        """Block for a free slot (AIMD), then until the learned budgets allow this attempt."""
        with self._condition:
            self._take_slot()
            self._last_tokens = tokens
            start_at = self._reserve(tokens, self._clock())
        while True:
            wait = start_at - self._clock()
            if wait <= 0:
                return
            self._sleep(min(wait, MAX_WAIT_SLICE))

    def after_attempt(self, status: Optional[int], retry_after: Optional[float],
                      headers: Optional[Mapping[str, str]] = None) -> None:
        """Learn the budgets from the answer's headers, then free the slot as the AIMD pacer does
        (a 429 while pacing pauses everyone and lowers the share instead of halving)."""
        with self._condition:
            if headers is not None:
                self._learn(headers)
            if status == 429 and self._limits:
                self._in_flight = max(0, self._in_flight - 1)
                if not self._refused_wait(retry_after):
                    self._pause_for(retry_after)
                    # 429s of attempts started before the last cut are that same signal.
                    started_in = getattr(self._attempt_generation, "value", self._generation)
                    if started_in == self._generation:
                        self._share = max(LOWEST_SHARE, self._share * SHARE_CUT)
                        self._generation += 1
                self._condition.notify_all()
                return
            if status is not None and status < 400 and self._limits:
                self._share = min(TARGET_SHARE, self._share + RECOVERY_STEP)
        super().after_attempt(status, retry_after)

    def _learn(self, headers: Mapping[str, str]) -> None:
        for kind in ("requests", "tokens"):
            limit = budget_limit(headers, kind)
            if limit is not None:
                if kind not in self._limits:
                    # The attempts sent before the budget was known have spent part of it already.
                    spent = self._in_flight * (1 if kind == "requests" else self._last_tokens)
                    self._schedule[kind] = self._clock() + spent / (limit / 60 * self._share)
                self._limits[kind] = limit
            if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0":
                # Spent (by other workers on this quota, say): the next attempt would only get a 429.
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset is not None and 0 < reset <= self._longest_pause:
                    self._pause_for(reset)

    def _reserve(self, tokens: int, now: float) -> float:
        """The moment this attempt may start, moving each budget's schedule past it."""
        costs = {"requests": 1.0, "tokens": float(max(tokens, 0))}
        start_at = now
        for kind, limit in self._limits.items():
            per_second = limit / 60 * self._share
            burst = max(costs[kind], limit / 60 * BURST_SECONDS)
            start_at = max(start_at, self._schedule.get(kind, now) - burst / per_second)
        for kind, limit in self._limits.items():
            per_second = limit / 60 * self._share
            self._schedule[kind] = max(self._schedule.get(kind, now), start_at) + costs[kind] / per_second
        return start_at

    def _pause_for(self, retry_after: Optional[float]) -> None:
        wait = self._backoff_without_hint if retry_after is None else retry_after
        resume_at = self._clock() + max(wait, 0.0)
        if resume_at > self._paused_until:
            self._paused_until = resume_at
            self._pauses += 1


class MeteredRequest:
    """The `Pacer` the HTTP layer gets for one request: the shared pacer, with this request's cost."""

    __slots__ = ("pacer", "tokens")

    def __init__(self, pacer: QuotaPacer, tokens: int) -> None:
        self.pacer = pacer
        self.tokens = tokens

    def before_attempt(self) -> None:
        self.pacer.before_attempt(self.tokens)

    def after_attempt(self, status: Optional[int], retry_after: Optional[float],
                      headers: Optional[Mapping[str, str]] = None) -> None:
        self.pacer.after_attempt(status, retry_after, headers)


def for_request(pacer: Any, fields: Mapping[str, Any]) -> Any:
    """The pacer to hand the HTTP layer for one request with these body fields: the pacer's
    `for_request(tokens)` when it has one (estimates matter to it), else the pacer itself."""
    metered = getattr(pacer, "for_request", None)
    return metered(estimated_tokens(fields)) if callable(metered) else pacer


class PacerRegistry:
    """The shared QuotaPacer of each (connection, deployment) in this process; a forked child
    starts with none (a pacer's lock may have been held at the fork, its slots are the parent's)."""

    def __init__(self, max_pacers: int = MAX_SHARED_PACERS) -> None:
        self.max_pacers = max_pacers
        self._lock = threading.Lock()
        self._pacers: "OrderedDict[Tuple[Any, str], QuotaPacer]" = OrderedDict()
        process_state.renew_after_fork(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._pacers = OrderedDict()

    def pacer(self, connection_fingerprint: Any, deployment: str, max_concurrency: int) -> QuotaPacer:
        """The deployment's pacer, allowing at least `max_concurrency` in flight."""
        key = (connection_fingerprint, deployment)
        with self._lock:
            pacer = self._pacers.get(key)
            if pacer is None:
                pacer = self._pacers[key] = QuotaPacer(max_concurrency)
                if len(self._pacers) > self.max_pacers:
                    self._pacers.popitem(last=False)  # a step still holding it keeps using it
            else:
                self._pacers.move_to_end(key)
        pacer.widen(max_concurrency)
        return pacer


#: This process's shared pacers, built on first use.
shared_pacers = ProcessSingleton(PacerRegistry)


def batch_pacer(step: Any, deployment: str, max_concurrency: int) -> Any:
    """The pacer every request of one batch step shares: an engine's (the `batch_pacer` hook,
    shared across workers), else the runtime's `pacer_factory` (tests), else this process's
    shared pacer of the deployment."""
    hooks = step.client.hooks
    hook = getattr(hooks, "batch_pacer", None) if hooks is not None else None
    if hook is not None:
        supplied = hook(connection=step.connection, deployment=deployment, max_concurrency=max_concurrency)
        if supplied is not None:
            return supplied
    if step.pacer_factory is not None:
        return step.pacer_factory(max_concurrency)
    return shared_pacers().pacer(step.connection.fingerprint, deployment, max_concurrency)
