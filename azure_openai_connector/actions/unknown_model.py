"""Plain words for "no such model or deployment": the service's 404 names neither the input to fix
nor where to find valid values, so the step's error does."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import NotFoundError

# Azure (dated and v1) answers an unknown deployment with DeploymentNotFound; OpenAI an unknown
# or inaccessible model with model_not_found.
UNKNOWN_MODEL_CODES = frozenset({"DeploymentNotFound", "model_not_found"})
MODEL_FIELD = "model"


def options_command(action: str) -> str:
    """The CLI command that lists the values the `model` input can take."""
    return f"azure-openai-connector options {action} {MODEL_FIELD}"


def explain_unknown_model(error: NotFoundError, model: str, action: str) -> NotFoundError:
    """The same error (type, status, code and request ID kept), its message saying which input
    is wrong and how to list valid values, `param` and `details["field"]` naming the field."""
    if error.code not in UNKNOWN_MODEL_CODES:
        return error
    command = options_command(action)
    error.message = (f"The model or deployment {model!r} does not exist on this connection (Azure: "
                     f"no deployment by that name; OpenAI: no such model, or no access to it). Check "
                     f"the '{MODEL_FIELD}' input; `{command}` lists the available ones. "
                     f"The service said: {error.message}")
    error.args = (error.message,)
    error.param = MODEL_FIELD
    error.details["field"] = MODEL_FIELD
    error.details["list_options"] = command
    return error


@contextmanager
def naming_the_model(model: str, action: str) -> Iterator[None]:
    """Re-raise an unknown-model 404 from the block with `explain_unknown_model`'s wording."""
    try:
        yield
    except NotFoundError as error:
        raise explain_unknown_model(error, model, action)
