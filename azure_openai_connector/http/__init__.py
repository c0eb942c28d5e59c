"""The HTTP layer: one pooled client per connection, timeouts, retries, typed errors.

One job per module: `messages` (value types), `retry` (when and how long), `error_mapping`
(answers and failures to typed errors), `client` (the session and the request loop). Redaction
is the package's own `redaction` module, shared with everything else that shows text.
"""

from __future__ import annotations

from ..redaction import redact, redact_headers  # noqa: F401 - for callers of the HTTP layer
from .client import CONNECT_TIMEOUT, POOL_SIZE, READ_TIMEOUT, USER_AGENT, HttpClient  # noqa: F401
from .error_mapping import error_from_response, transport_error  # noqa: F401
from .messages import (  # noqa: F401
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
from .retry import RETRYABLE_STATUSES, parse_retry_after, retry_delay, should_retry  # noqa: F401
