"""The HTTP layer's value types: a retry policy, what observers see of each attempt, and the answer."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, NamedTuple, Optional, Protocol

from requests.structures import CaseInsensitiveDict

from .. import errors

DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
RETRY_JITTER = 0.25


# The value types are NamedTuples, not dataclasses: immutable all the same, and a worker's start
# pays a tenth of the time to create them (a frozen dataclass execs six generated methods).


class RetryPolicy(NamedTuple):
    """How often and how long to retry; the defaults follow openai-python."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    max_retry_after: float = MAX_RETRY_AFTER
    exponential: bool = True
    jitter: float = RETRY_JITTER
    retry_all_errors: bool = False

    def backoff(self, attempt: int, random_fraction: float) -> float:
        """The wait before retry number `attempt` (1-based) when the server gave no hint."""
        base = self.initial_delay * (2 ** (attempt - 1) if self.exponential else 1)
        return min(base, self.max_delay) * (1 - self.jitter * random_fraction)


NO_RETRIES = RetryPolicy(max_retries=0)


class Pacer(Protocol):
    """Shared pacing for a batch: may block before an attempt, learns from each answer."""

    def before_attempt(self) -> None: ...

    def after_attempt(self, status: Optional[int], retry_after: Optional[float],
                      headers: Optional[Mapping[str, str]] = None) -> None: ...


class OutgoingRequest(NamedTuple):
    """What observers see before an attempt (headers already redacted)."""

    action: Optional[str]
    method: str
    url: str
    attempt: int
    headers: Dict[str, str]


class Exchange(NamedTuple):
    """What observers see after an attempt."""

    request: OutgoingRequest
    status: Optional[int]
    elapsed: float
    request_id: Optional[str]
    error: Optional[errors.ConnectorError]
    will_retry: bool
    retry_delay: Optional[float]


class Response(NamedTuple):
    """A successful answer, read whole."""

    status: int
    headers: CaseInsensitiveDict
    content: bytes
    request_id: Optional[str]
    attempts: int
    elapsed: float
    url: str = ""

    def __repr__(self) -> str:
        return (f"Response(status={self.status}, request_id={self.request_id!r}, attempts={self.attempts}, "
                f"{len(self.content)} bytes)")

    def json(self) -> Any:
        """The body as JSON, or InvalidResponseError naming the request."""
        try:
            content = self.content
            return _STRICT_JSON.decode(content.decode(json.detect_encoding(content), "surrogatepass"))
        except (ValueError, RecursionError):  # RecursionError: nested about 1,000 deep
            raise errors.answer_error(errors.InvalidResponseError, self,
                                      "The service answered with a body that is not valid JSON",
                                      code="invalid_json") from None


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON: taken in, they would make the step's own output invalid.
    raise ValueError(f"{name} is not JSON")


# Made once: json.loads with any option builds a new decoder on every call. Decoding as json.loads
# does for bytes (UTF-8, -16 or -32, found from the first bytes).
_STRICT_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def request_id_of(headers: Any) -> Optional[str]:
    """The service's ID for a request: OpenAI's `x-request-id`, or Azure API Management's."""
    return headers.get("x-request-id") or headers.get("apim-request-id")
