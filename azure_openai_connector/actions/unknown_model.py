"""Plain words for "no such model or deployment" and "that model is retired": the service's 404 or
410 names neither the input to fix nor where to find valid values, so the step's error does."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import ApiError, NotFoundError

# Azure (dated and v1) answers an unknown deployment with DeploymentNotFound; OpenAI an unknown
# or inaccessible model with model_not_found.
UNKNOWN_MODEL_CODES = frozenset({"DeploymentNotFound", "model_not_found"})
# Azure answers a deployment of a retired (Deprecated) model with 410 Gone.
RETIRED_MODEL_STATUS = 410
MODEL_FIELD = "model"


def options_command(action: str) -> str:
    """The CLI command that lists the values the `model` input can take."""
    return f"azure-openai-connector options {action} {MODEL_FIELD}"


def explain_unknown_model(error: ApiError, model: str, action: str) -> ApiError:
    """The same error (type, status, code and request ID kept), its message saying which input
    is wrong and how to list valid values, `param` and `details["field"]` naming the field: for an
    unknown model or deployment (404) and for a retired one (410); any other error as it is."""
    command = options_command(action)
    if error.status == RETIRED_MODEL_STATUS:
        said = (f"The model behind {model!r} is retired: the service no longer serves it (HTTP 410). "
                f"Deploy a current model and name that deployment (Azure) or model (OpenAI) in the "
                f"'{MODEL_FIELD}' input; `{command}` lists the available ones with their retirement dates.")
    elif isinstance(error, NotFoundError) and error.code in UNKNOWN_MODEL_CODES:
        said = (f"The model or deployment {model!r} does not exist on this connection (Azure: "
                f"no deployment by that name; OpenAI: no such model, or no access to it). Check "
                f"the '{MODEL_FIELD}' input; `{command}` lists the available ones.")
    else:
        return error
    error.message = f"{said} The service said: {error.message}"
    error.args = (error.message,)
    error.param = MODEL_FIELD
    error.details["field"] = MODEL_FIELD
    error.details["list_options"] = command
    return error


@contextmanager
def naming_the_model(model: str, action: str) -> Iterator[None]:
    """Re-raise an unknown-model 404 or a retired-model 410 from the block with
    `explain_unknown_model`'s wording (any other error unchanged)."""
    try:
        yield
    except ApiError as error:
        raise explain_unknown_model(error, model, action)
