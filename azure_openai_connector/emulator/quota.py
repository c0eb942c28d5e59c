"""Quota mode: per-deployment requests-per-minute and tokens-per-minute budgets, enforced as Azure
enforces them, with the rate-limit headers Azure and OpenAI send on every answer.

Each budget is a bucket that refills continuously at its per-minute rate and holds `window_seconds`
worth of it (Azure enforces RPM and TPM over 1-10 s windows, so a minute's budget cannot be spent
in one burst). A request is admitted when a request and its estimated tokens are both in the
bucket; tokens are estimated at arrival, as Azure does: prompt characters / 4, plus
`max_completion_tokens` (or `max_tokens`, `max_output_tokens`) times `max(n, best_of)`.

The headers report the minute's view: `limit` is the per-minute budget, `remaining` is that budget
less what was spent and is not refilled yet, and `reset` is how long until it is whole again
(Azure: bare seconds; OpenAI: durations such as `1.5s` or `6m0s`).

`time_scale` speeds a quota up for benchmarks: at 10, each budget is spent and refilled ten times
faster and its window is ten times shorter (RPM 600 with 10 s windows becomes 600 per 6 s with
1 s windows). The headers then report real minutes and seconds (a limit of 6000 requests a
minute): a client reading them sees an ordinary, bigger quota. `clock` is injectable so tests
can step time by hand.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from .errors import AZURE, rate_limit_body

DEFAULT_WINDOW_SECONDS = 10.0
CHARACTERS_PER_TOKEN = 4
# Paths whose requests spend a deployment's budget (the generation routes, any API flavour).
METERED_SUFFIXES = ("/chat/completions", "/completions", "/responses", "/embeddings")
DEFAULT_DEPLOYMENT = "*"
# Refills are sums of float products: a bucket a hair short of a whole request is a whole one.
EPSILON = 1e-9

BudgetSpec = Tuple[int, int]
QuotaSpec = Union[BudgetSpec, Mapping[str, BudgetSpec]]


def estimated_tokens(body: Any) -> int:
    """The tokens Azure reserves for a request at arrival: prompt characters / 4 (rounded up),
    plus the completion allowance times `max(n, best_of)`."""
    if not isinstance(body, dict):
        return 0
    characters = sum(_text_length(body.get(name)) for name in ("messages", "prompt", "input"))
    prompt = math.ceil(characters / CHARACTERS_PER_TOKEN)
    allowance = next((body[name] for name in ("max_completion_tokens", "max_tokens", "max_output_tokens")
                      if _is_count(body.get(name))), 0)
    choices = max([1] + [body[name] for name in ("n", "best_of") if _is_count(body.get(name))])
    return prompt + allowance * choices


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(item) for item in value)
    if isinstance(value, dict):
        return _text_length(value.get("content")) + _text_length(value.get("text"))
    return 0


class _Bucket:
    """One budget: refills at `per_second`, holds at most `capacity`; `per_minute` is what it
    refills in a real minute (the limit its headers report)."""

    def __init__(self, per_minute: int, capacity: float, per_second: float, now: float) -> None:
        self.per_minute = per_minute
        self.capacity = capacity
        self.per_second = per_second
        self.level = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = max(self.updated, now)

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is in the bucket (an amount above capacity needs a full one)."""
        return max(0.0, (min(amount, self.capacity) - self.level) / self.per_second)

    def remaining(self) -> int:
        return max(0, math.floor(self.per_minute - (self.capacity - self.level)))

    def reset_seconds(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.per_second)


@dataclass(frozen=True)
class Verdict:
    """Whether one request was admitted, and what its answer reports."""

    admitted: bool
    retry_after: float
    limit_requests: int
    limit_tokens: int
    remaining_requests: int
    remaining_tokens: int
    reset_requests: float
    reset_tokens: float

    def headers(self, dialect: str) -> Dict[str, str]:
        """The x-ratelimit-* headers (plus retry-after on a refusal) in the dialect's format."""
        reset = _seconds_text if dialect == AZURE else _duration_text
        headers = {
            "x-ratelimit-limit-requests": str(self.limit_requests),
            "x-ratelimit-limit-tokens": str(self.limit_tokens),
            "x-ratelimit-remaining-requests": str(self.remaining_requests),
            "x-ratelimit-remaining-tokens": str(self.remaining_tokens),
            "x-ratelimit-reset-requests": reset(self.reset_requests),
            "x-ratelimit-reset-tokens": reset(self.reset_tokens),
        }
        if not self.admitted:
            headers["retry-after-ms"] = str(max(1, math.ceil(self.retry_after * 1000)))
            headers["retry-after"] = str(max(1, math.ceil(self.retry_after)))
        return headers

    def refusal_body(self, dialect: str, operation: str, api_version: Optional[str]) -> Dict[str, Any]:
        return rate_limit_body(dialect, "rate_limit_exceeded", max(1, math.ceil(self.retry_after)),
                               operation, api_version)


def _seconds_text(seconds: float) -> str:
    return f"{round(seconds, 3):g}"


def _duration_text(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{round(rest, 3):g}s"
    return f"{round(rest, 3):g}s"


class QuotaBook:
    """The budgets of every deployment: `quota` is `(rpm, tpm)` for all, or a mapping of
    deployment name to `(rpm, tpm)` where the key "*" covers the others (unlisted: unlimited)."""

    def __init__(self, quota: QuotaSpec, *, time_scale: float = 1.0,
                 window_seconds: float = DEFAULT_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if time_scale <= 0 or window_seconds <= 0:
            raise ValueError("time_scale and window_seconds must be positive")
        budgets = {DEFAULT_DEPLOYMENT: quota} if isinstance(quota, tuple) else dict(quota)
        for name, (rpm, tpm) in budgets.items():
            if rpm < 1 or tpm < 1:
                raise ValueError(f"the quota of {name!r} must allow at least 1 request and 1 token a minute")
        self.budgets: Dict[str, BudgetSpec] = {name: (int(rpm), int(tpm)) for name, (rpm, tpm) in budgets.items()}
        self.time_scale = float(time_scale)
        self.window_seconds = float(window_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: Dict[str, Tuple[_Bucket, _Bucket]] = {}
        self.admitted = 0
        self.refused = 0

    def budget(self, deployment: str) -> Optional[BudgetSpec]:
        return self.budgets.get(deployment) or self.budgets.get(DEFAULT_DEPLOYMENT)

    def check(self, deployment: str, tokens: int) -> Optional[Verdict]:
        """Admit or refuse one request of `deployment` estimated at `tokens`; None: no budget."""
        budget = self.budget(deployment)
        if budget is None:
            return None
        with self._lock:
            now = self._clock()
            requests, token_bucket = self._buckets_of(deployment, budget, now)
            requests.refill(now)
            token_bucket.refill(now)
            fits_tokens = token_bucket.level + EPSILON >= min(tokens, token_bucket.capacity)
            admitted = requests.level + EPSILON >= 1 and fits_tokens
            wait = 0.0
            if admitted:
                requests.level -= 1
                token_bucket.level -= tokens
                self.admitted += 1
            else:
                wait = max(requests.wait_for(1), token_bucket.wait_for(tokens))
                # Refused requests still count against the request budget, while any is left.
                requests.level = max(0.0, requests.level - 1)
                self.refused += 1
            return Verdict(admitted, wait, requests.per_minute, token_bucket.per_minute,
                           requests.remaining(), token_bucket.remaining(),
                           requests.reset_seconds(), token_bucket.reset_seconds())

    def forget(self) -> None:
        """Refill every budget and zero the counters (a benchmark's next round)."""
        with self._lock:
            self._buckets.clear()
            self.admitted = self.refused = 0

    def _buckets_of(self, deployment: str, budget: BudgetSpec, now: float) -> Tuple[_Bucket, _Bucket]:
        buckets = self._buckets.get(deployment)
        if buckets is None:
            window = self.window_seconds / 60
            per_second = self.time_scale / 60
            buckets = tuple(_Bucket(round(per_minute * self.time_scale), per_minute * self.window_seconds / 60,
                                    per_minute * self.time_scale / 60, now)
                            for per_minute in budget)  # type: ignore[assignment]
            self._buckets[deployment] = buckets  # type: ignore[assignment]
        return buckets  # type: ignore[return-value]


def metered(path: str) -> bool:
    """Whether requests to `path` spend a deployment's budget."""
    return path.endswith(METERED_SUFFIXES)


def deployment_of(path: str, body: Any) -> Optional[str]:
    """The deployment a request spends: Azure's path segment, else the body's `model`."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "openai" and parts[2] == "deployments":
        return parts[3]
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None
