"""The HTTP layer: one pooled client per connection, timeouts, retries, typed errors.

One job per module: `messages` (value types), `retry` (when and how long), `error_mapping`
(answers and failures to typed errors), `client` (the session and the request loop). Redaction
is the package's own `redaction` module, shared with everything else that shows text.
"""

from __future__ import annotations

from ..redaction import redact, redact_headers
from .client import CONNECT_TIMEOUT, POOL_SIZE, READ_TIMEOUT, USER_AGENT, HttpClient
from .error_mapping import CONTENT_FILTER_CODES, error_from_response, transport_error
from .messages import (
    DEFAULT_MAX_RETRIES,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    NO_RETRIES,
    Exchange,
    OutgoingRequest,
    Pacer,
    Response,
    RetryPolicy,
)
from .retry import RETRYABLE_STATUSES, parse_retry_after, retry_delay, should_retry

__all__ = [
    "CONTENT_FILTER_CODES",
    "HttpClient", "Response", "RetryPolicy", "NO_RETRIES", "Pacer", "OutgoingRequest", "Exchange",
    "error_from_response", "transport_error", "should_retry", "retry_delay", "parse_retry_after",
    "redact", "redact_headers", "CONNECT_TIMEOUT", "READ_TIMEOUT", "POOL_SIZE", "USER_AGENT",
    "DEFAULT_MAX_RETRIES", "INITIAL_RETRY_DELAY", "MAX_RETRY_DELAY", "MAX_RETRY_AFTER", "RETRYABLE_STATUSES",
]
