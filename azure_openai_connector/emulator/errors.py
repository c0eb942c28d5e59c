"""Error bodies in the two dialects: OpenAI's `{"error": {message, type, param, code}}` and Azure's."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any, Dict, Optional, Union

OPENAI = "openai"
AZURE = "azure"

AZURE_UNAUTHORIZED_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)
AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE = (
    "The API deployment for this resource does not exist. If you created the deployment within the "
    "last 5 minutes, please wait a moment and try again."
)
QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."
CONTENT_FILTER_PROMPT_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read "
    "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)

# (message, type) the live OpenAI API gives for server-side statuses.
_OPENAI_STATUS_TEXT = {
    400: ("Bad request.", "invalid_request_error"),
    403: ("Country, region, or territory not supported", "request_forbidden"),
    404: ("Not found.", "invalid_request_error"),
    408: ("Request timed out.", "timeout_error"),
    409: ("The request conflicted with another request in progress.", "conflict_error"),
    422: ("Unprocessable entity.", "invalid_request_error"),
    500: (
        "The server had an error while processing your request. Sorry about that! You can retry your "
        "request, or contact us through our help center if the error persists.",
        "server_error",
    ),
    502: ("Bad gateway.", "server_error"),
    503: ("The engine is currently overloaded, please try again later.", "service_unavailable_error"),
    504: ("Gateway timeout.", "server_error"),
}


class ServiceRefusal(Exception):
    """A request the emulated service refuses; rendered in the dialect of the route."""

    def __init__(
        self,
        status: int,
        message: str,
        param: Optional[str] = None,
        code: Optional[str] = None,
        error_type: str = "invalid_request_error",
        azure_code: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type
        self.azure_code = azure_code

    def body(self, dialect: str) -> Dict[str, Any]:
        if dialect == AZURE:
            code = self.azure_code or self.code or ("BadRequest" if self.status == 400 else str(self.status))
            return azure_error(code, self.message, param=self.param, error_type=self.error_type)
        return openai_error(self.message, self.error_type, param=self.param, code=self.code)


def openai_error(message: str, error_type: str, param: Optional[str] = None, code: Optional[str] = None) -> Dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def azure_error(
    code: str, message: str, param: Optional[str] = None, error_type: Optional[str] = None
) -> Dict[str, Any]:
    # The Azure spec types param and type as plain strings, so absent beats null here.
    error: Dict[str, Any] = {"code": code, "message": message}
    if param is not None:
        error["param"] = param
    if error_type is not None:
        error["type"] = error_type
    return {"error": error}


def bad_request(message: str, param: Optional[str] = None, code: Optional[str] = None) -> ServiceRefusal:
    return ServiceRefusal(400, message, param=param, code=code)


def mask_key(key: str) -> str:
    """Show a key the way OpenAI does in errors, never in full."""
    if len(key) < 12:
        return "*" * 4
    return f"{key[:3]}{'*' * 4}{key[-4:]}"


def unauthorized_body(dialect: str, presented_key: Optional[str]) -> Dict[str, Any]:
    if dialect == AZURE:
        return azure_error("401", AZURE_UNAUTHORIZED_MESSAGE)
    if presented_key:
        message = (
            f"Incorrect API key provided: {mask_key(presented_key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
    else:
        message = (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    return openai_error(message, "invalid_request_error", code="invalid_api_key")


def not_found_body(dialect: str, what: str = "The requested resource") -> Dict[str, Any]:
    if dialect == AZURE:
        return azure_error("DeploymentNotFound", AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE)
    return openai_error(
        f"{what} does not exist or you do not have access to it.", "invalid_request_error", code="model_not_found"
    )


def rate_limit_seconds(retry_after: Union[int, float, str, None], retry_after_ms: Union[int, float, str, None]) -> int:
    """Whole seconds to quote in a 429 message."""
    for value, scale in ((retry_after, 1.0), (retry_after_ms, 1000.0)):
        try:
            if value is not None:
                return max(1, math.ceil(float(value) / scale))
        except ValueError:
            pass
    return 1


def rate_limit_body(dialect: str, code: str, seconds: int, operation: str, api_version: Optional[str]) -> Dict[str, Any]:
    if dialect == AZURE:
        message = (
            f"Requests to the {operation} Operation under Azure OpenAI API version {api_version or 'v1'} have "
            f"exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after {seconds} "
            "seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase "
            "the default rate limit."
        )
        return azure_error("429", message)
    message = (
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
        f"Please try again in {seconds}s. Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    return openai_error(message, "requests", code=code)


def quota_body(dialect: str) -> Dict[str, Any]:
    if dialect == AZURE:
        return azure_error("insufficient_quota", QUOTA_MESSAGE, error_type="insufficient_quota")
    return openai_error(QUOTA_MESSAGE, "insufficient_quota", code="insufficient_quota")


def status_body(dialect: str, status: int, message: Optional[str]) -> Dict[str, Any]:
    default_message, error_type = _OPENAI_STATUS_TEXT.get(status, (None, "server_error" if status >= 500 else "invalid_request_error"))
    if default_message is None:
        try:
            default_message = HTTPStatus(status).phrase + "."
        except ValueError:
            default_message = f"HTTP {status}."
    text = message or default_message
    if dialect == AZURE:
        return azure_error(str(status), text)
    return openai_error(text, error_type)


def content_filter_prompt_body(spec_shape: bool) -> Dict[str, Any]:
    """A prompt refused by Azure's filter: the live spelling, or the 2024-10-21 spec's."""
    categories = {
        "hate": {"filtered": True, "severity": "high"},
        "self_harm": {"filtered": False, "severity": "safe"},
        "sexual": {"filtered": False, "severity": "safe"},
        "violence": {"filtered": False, "severity": "safe"},
    }
    if spec_shape:
        # The spec types `type` as a string, so it is left out rather than sent as null.
        return {
            "error": {
                "code": "content_filter",
                "message": CONTENT_FILTER_PROMPT_MESSAGE,
                "param": "prompt",
                "status": 400,
                "inner_error": {"code": "ResponsibleAIPolicyViolation", "content_filter_results": categories},
            }
        }
    return {
        "error": {
            "message": CONTENT_FILTER_PROMPT_MESSAGE,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": categories},
        }
    }
