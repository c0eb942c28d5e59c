"""The connector's error classes: one small class per kind of failure a caller acts on differently.

Every class crosses processes intact: it pickles (multiprocessing, Celery's pickle serializer,
Ray) with its class and every attribute, and `from_dict(error.to_dict())` rebuilds it from plain
JSON (Celery's JSON serializer, a queue, an envelope).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, List, Mapping, Optional, Protocol, Tuple, Type, TypeVar


class ConnectorError(Exception):
    """Base class of every error the connector raises on purpose."""

    kind = "connector_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        #: Extra JSON about the failure, e.g. content-filter results or the work a step finished.
        self.details: Dict[str, Any] = {}

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON describing the error, for CLI output and host step results."""
        result: Dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.details:
            result["details"] = self.details
        return result

    def __reduce__(self) -> Tuple[Any, ...]:
        # Exception's own reduce calls `cls(*self.args)`, but subclasses take other arguments than
        # the message (InputValidationError a list of problems): rebuild without calling __init__.
        return (_restore, (type(self), self.args, self.__dict__.copy()))


def _restore(error_class: Type[ConnectorError], args: Tuple[Any, ...],
             state: Dict[str, Any]) -> ConnectorError:
    """Unpickle an error: the instance as it was, without running its constructor again."""
    error = error_class.__new__(error_class, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def error_classes() -> Dict[str, Type[ConnectorError]]:
    """Every connector error class by its `kind`, subclasses defined later (a plugin's included)
    too: the classes are found when asked, never listed by hand. On a shared kind the package's
    own class wins."""
    ours: Dict[str, Type[ConnectorError]] = {}
    theirs: Dict[str, Type[ConnectorError]] = {}
    pending: List[Type[ConnectorError]] = [ConnectorError]
    while pending:
        error_class = pending.pop(0)
        is_ours = error_class.__module__.split(".")[0] == __name__.split(".")[0]
        (ours if is_ours else theirs).setdefault(error_class.kind, error_class)
        pending.extend(error_class.__subclasses__())
    return {**theirs, **ours}


def from_dict(data: Mapping[str, Any]) -> ConnectorError:
    """The typed error that `to_dict()` described (its inverse), found by its `type`. An unknown
    type becomes an ApiError when it has a status, else a ConnectorError, keeping its type."""
    kind = data.get("type", data.get("kind"))
    fields = {name: copy.deepcopy(value) for name, value in data.items() if name not in ("type", "kind")}
    fields["message"] = str(fields.get("message", ""))
    fallback = ApiError if fields.get("status") is not None else ConnectorError
    error_class = error_classes().get(kind, fallback) if isinstance(kind, str) else fallback
    error = _constructed(error_class, fields)
    # The constructor gave every attribute its default; the described values win.
    for name, value in fields.items():
        setattr(error, name, value)
    error.args = (error.message,)
    if isinstance(kind, str) and kind != error.kind:
        error.kind = kind
    return error


def _constructed(error_class: Type[ConnectorError], fields: Mapping[str, Any]) -> ConnectorError:
    """An instance made by the class's own constructor (so its defaults are set), fed the named
    fields it takes; a constructor needing something the fields lack gets a bare instance."""
    positional: List[Any] = []
    keywords: Dict[str, Any] = {}
    bare = False
    for parameter in list(inspect.signature(error_class.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name in fields:
            value = fields[parameter.name]
        elif parameter.default is not parameter.empty:
            continue
        else:
            bare = True
            break
        if parameter.kind is parameter.KEYWORD_ONLY:
            keywords[parameter.name] = value
        else:
            positional.append(value)
    if not bare:
        try:
            return error_class(*positional, **keywords)
        except Exception:  # noqa: BLE001 - a value of the wrong shape: fall back to a bare instance
            pass
    error = error_class.__new__(error_class)
    ConnectorError.__init__(error, fields["message"])
    return error


class InputValidationError(ConnectorError):
    """Inputs or connection refused before any request; `.errors` lists every field path and reason."""

    kind = "invalid_input"

    def __init__(self, errors: List[Dict[str, str]], *, subject: str = "inputs") -> None:
        if not errors:
            # "Invalid, with no problem listed" must never be read as valid by a caller.
            raise ValueError("InputValidationError needs at least one problem")
        self.errors = errors
        # A path that only repeats the subject ("Invalid action: action: ...") is left out.
        listed = "; ".join(e["message"] if e["path"] == subject else f"{e['path'] or '(root)'}: {e['message']}"
                           for e in errors[:20])
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__(f"Invalid {subject}: {listed}{more}")

    def to_dict(self) -> Dict[str, Any]:
        return {**super().to_dict(), "errors": self.errors}


class EntraTokenError(ConnectorError):
    """No Microsoft Entra ID token could be had: wrong tenant, client, secret, identity or scope."""

    kind = "entra_token"


class BatchWaitExhaustedError(ConnectorError):
    """A wait for a Batch API job ran out of polls while the job still runs; `details` holds its
    `batch_id`, last `status` and the `polls` made. Not retried: the caller decides whether to wait
    longer, check back later or cancel it."""

    kind = "batch_wait_exhausted"


class ApiError(ConnectorError):
    """The service answered with an error: `.status`, `.code`, `.message`, `.request_id`."""

    kind = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        param: Optional[str] = None,
        error_type: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.param = param
        self.error_type = error_type
        self.details = details or {}
        self.attempts = attempts

    def __str__(self) -> str:
        parts = [f"status {self.status}" if self.status is not None else None,
                 f"code {self.code}" if self.code else None,
                 f"request id {self.request_id}" if self.request_id else None]
        context = ", ".join(p for p in parts if p)
        return f"{self.message} ({context})" if context else self.message

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
                f"message={self.message!r}, request_id={self.request_id!r})")

    def to_dict(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {
            "type": self.kind,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "request_id": self.request_id,
            "attempts": self.attempts,
        }
        if self.param:
            result["param"] = self.param
        if self.error_type:
            result["error_type"] = self.error_type
        if self.details:
            result["details"] = self.details
        return result


class BadRequestError(ApiError):
    """400/422: the service refused the request itself; retrying will not help."""

    kind = "bad_request"


class UnsupportedParameterError(BadRequestError):
    """400 unsupported_parameter / unsupported_value: the model behind the deployment refuses an
    input; `.field` names that input (`temperature`), `details["allowed_values"]` lists what the
    service said it takes. Never retried: the same request gets the same answer."""

    kind = "unsupported_parameter"

    def __init__(self, message: str, *, field: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field

    def to_dict(self) -> Dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class AuthenticationError(ApiError):
    """401: the key or token was refused."""

    kind = "authentication"


class PermissionDeniedError(ApiError):
    """403: authenticated but not allowed (region, network rules, an APIM quota policy)."""

    kind = "permission_denied"


class NotFoundError(ApiError):
    """404: unknown deployment, model or path."""

    kind = "not_found"


class RateLimitError(ApiError):
    """429 that may be retried later; `.retry_after` holds the server's hint in seconds."""

    kind = "rate_limit"

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def to_dict(self) -> Dict[str, Any]:
        result = super().to_dict()
        result["retry_after"] = self.retry_after
        return result


class QuotaExceededError(ApiError):
    """429 insufficient_quota: billing or quota must change first, so it is never retried."""

    kind = "quota_exceeded"


class ContentFilterError(ApiError):
    """The prompt (HTTP 400) or the output (finish_reason content_filter) was filtered."""

    kind = "content_filter"


class ServerError(ApiError):
    """5xx after every retry was spent."""

    kind = "server_error"


class InvalidResponseError(ApiError):
    """The service answered 2xx with a body the connector cannot use (not JSON, missing keys)."""

    kind = "invalid_response"


class RedirectNotFollowedError(ApiError):
    """A 3xx answer: redirects are never followed so credentials cannot reach another host."""

    kind = "redirect_not_followed"


class ApiConnectionError(ConnectorError):
    """The request never got an answer: refused, reset or dropped connection, DNS, TLS."""

    kind = "connection_error"

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts

    def to_dict(self) -> Dict[str, Any]:
        return {**super().to_dict(), "attempts": self.attempts}


class ApiTimeoutError(ApiConnectionError):
    """No answer within the connect or read timeout."""

    kind = "timeout"


class NotProcessedError(ApiError):
    """A batch request the service never ran: the batch expired, was cancelled or failed first."""

    kind = "not_processed"


class BatchNotFinishedError(ApiError):
    """Results were asked for while the batch is still running (`.code` is its status)."""

    kind = "batch_not_finished"


ApiErrorClass = TypeVar("ApiErrorClass", bound=ApiError)


class AnsweredRequest(Protocol):
    """What an error about a 2xx answer is built from (an HTTP layer `Response`)."""

    status: int
    request_id: Optional[str]
    attempts: int


def answer_error(error_class: Type[ApiErrorClass], answer: AnsweredRequest, message: str,
                 **fields: Any) -> ApiErrorClass:
    """An error about a 2xx answer the connector cannot use, naming that answer's status, request
    ID and attempt count (`fields` adds the code, details...)."""
    return error_class(message, status=answer.status, request_id=answer.request_id,
                       attempts=answer.attempts, **fields)


class ManifestError(ConnectorError):
    """connector.yaml is broken; the message names the file, the field path and the rule."""

    kind = "manifest_error"
