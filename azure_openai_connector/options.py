"""Live options for manifest inputs marked `x-options` (today: `models`, the service's models list),
for a host's select that still accepts free text: cached per connection, refreshed on demand."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import process_state
from .errors import InputValidationError
from .process_state import ProcessSingleton

OPTIONS_KEYWORD = "x-options"
MODELS_SOURCE = "models"
# Models lists change when someone deploys or retires a model: a few minutes of staleness is
# fine for a picker, and `refresh=True` is there for the moment after a change.
CACHE_SECONDS = 300.0
MAX_CACHED_CONNECTIONS = 64
# What the model of each action must be able to do, where the service states capabilities.
WANTED_CAPABILITIES: Dict[str, Tuple[str, ...]] = {
    "create_chat_completion": ("chat",),
    "summarize_text": ("chat",),
    "create_multiple_chat_completions": ("chat", "completion"),
    "create_image": ("image",),
    "submit_batch": ("chat",),
}


class ModelsListCache:
    """The service's models-list answer per connection, for `ttl` seconds; process-wide, renewed
    after fork (the answers are plain data, so a child keeps them; only the lock is new)."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._answers: Dict[tuple, Tuple[float, Any]] = {}
        self._lock = threading.Lock()
        process_state.renew_after_fork(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def get(self, key: tuple, fetch: Callable[[], Any], *, refresh: bool = False) -> Any:
        """The cached answer for `key`, or `fetch()`'s (outside the lock: a slow service must not
        hold up other connections) when refreshing, missing or older than `ttl`."""
        now = self._clock()
        with self._lock:
            found = self._answers.get(key)
        if found is not None and not refresh and now - found[0] < self.ttl:
            return found[1]
        answer = fetch()
        with self._lock:
            if len(self._answers) >= MAX_CACHED_CONNECTIONS:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = (self._clock(), answer)
        return answer

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


#: The process-wide cache behind the `input_options` hook.
models_list_cache = ProcessSingleton(ModelsListCache)


def options_source(action: str, input_name: str) -> Optional[str]:
    """The named options source of an action's input (None: the input takes free values only);
    InputValidationError for an unknown action or input."""
    from .manifest import load_manifest

    spec = load_manifest().action(action)
    field = spec.inputs.fields.get(input_name)
    if field is None:
        raise InputValidationError([{"path": input_name,
                                     "message": f"is not an input of {action}; its inputs are "
                                                f"{', '.join(spec.inputs.fields)}"}], subject="arguments")
    return field.get(OPTIONS_KEYWORD)


def input_options(action: str, input_name: str, connection: Optional[Mapping[str, Any]], *,
                  refresh: bool = False, runtime: Any,
                  today: Optional[datetime.date] = None) -> List[Dict[str, Any]]:
    """The options for one input on one connection: `[{value, label, capabilities,
    capabilities_known, lifecycle{status, retirement_date, ...}}]`, models unsuited to the action
    (by the capabilities the service states) left out, retired and deprecated ones marked.
    Empty for an input without `x-options`. Raises InputValidationError for a bad connection,
    action or input, and the typed ApiError when the service refuses the list."""
    from .models import options_from_models_list, suits

    if options_source(action, input_name) != MODELS_SOURCE:
        return []
    valid = _validated_connection(runtime, connection)

    def fetch() -> Any:
        return runtime.client(valid).request("GET", valid.models_url(), action="input_options").json()

    answer = models_list_cache().get(valid.fingerprint, fetch, refresh=refresh)
    options = options_from_models_list(answer, is_openai=valid.is_openai, today=today)
    wanted = WANTED_CAPABILITIES.get(action, ())
    return [option for option in options if suits(option, wanted)]


def _validated_connection(runtime: Any, connection: Optional[Mapping[str, Any]]) -> Any:
    """The runtime's Connection; a refusal never quotes the key (pasted into another field, say)."""
    from .http import redact

    try:
        return runtime.connection(connection)
    except InputValidationError as refusal:
        key = connection.get("api_key") if isinstance(connection, Mapping) else None
        if not isinstance(key, str):
            raise
        secrets = (key, key.strip())
        raise InputValidationError([{**problem, "message": redact(problem["message"], secrets)}
                                    for problem in refusal.errors], subject="connection") from None
