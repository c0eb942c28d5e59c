"""When to retry and how long to wait (see api-notes.md).

Retry 408, 409, 429 (not insufficient_quota), 5xx, timeouts and dropped connections;
`x-should-retry` overrides; wait `retry-after-ms`, then `retry-after` (seconds or an HTTP date),
and give up at once when that wait is above the cap; otherwise exponential backoff with jitter.
Never retry other 4xx or content-filter refusals.
"""

from __future__ import annotations

import email.utils
import math
from typing import Callable, Mapping, Optional

from .. import errors
from .messages import RetryPolicy

RETRYABLE_STATUSES = frozenset({408, 409, 429})


def should_retry(status: int, headers: Mapping[str, str], error: Optional[errors.ApiError],
                 policy: RetryPolicy) -> bool:
    """Whether an error status is worth another attempt (before looking at the wait)."""
    if policy.retry_all_errors and status >= 400:
        return True
    verdict = headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    if isinstance(error, (errors.QuotaExceededError, errors.ContentFilterError)):
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def retry_delay(policy: RetryPolicy, attempt: int, retry_after: Optional[float],
                random_fraction: Callable[[], float]) -> Optional[float]:
    """The wait before the next attempt, or None when the server asks for more than we allow
    (it will not be ready sooner)."""
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after else None
    return policy.backoff(attempt, random_fraction())


def parse_retry_after(headers: Mapping[str, str], *, wall_clock: Callable[[], float]) -> Optional[float]:
    """The server's wait hint in seconds: `retry-after-ms`, then `retry-after` (seconds, or an
    HTTP date measured against `wall_clock`, the client's injected `time.time`)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
            if 0 <= value < math.inf:
                return value
        except ValueError:
            pass
    seconds = headers.get("retry-after")
    if not seconds:
        return None
    try:
        value = float(seconds)
        # "1e400" reads as infinity, and NaN compares false: neither is a wait, nor valid JSON.
        return value if 0 <= value < math.inf else None
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(seconds)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - wall_clock())
