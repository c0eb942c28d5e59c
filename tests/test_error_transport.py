"""Every error class crosses processes intact: pickle, cloudpickle, `from_dict(to_dict())` through
JSON, and a real process pool whose worker raises it. The classes are found by walking the
subclasses, so a class added later is covered without touching this file."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, Iterator, List, Type

import cloudpickle
import pytest

import azure_openai_connector
from azure_openai_connector import errors
from azure_openai_connector import manifest  # noqa: F401 - its error class must be walked too

PACKAGE = azure_openai_connector.__name__

# A value for every constructor argument an error class takes, each unlike its default, so a
# round trip that drops one shows.
SAMPLE_ARGUMENTS: Dict[str, Any] = {
    "message": "The service said no",
    "errors": [{"path": "messages/0/role", "message": "'wizard' is not one of ['user']"},
               {"path": "connection/api_key", "message": "is required"}],
    "subject": "connection",
    "status": 429,
    "code": "rate_limit_exceeded",
    "request_id": "req_0123456789abcdef",
    "param": "messages",
    "error_type": "requests",
    "details": {"content_filter_results": {"hate": {"filtered": True, "severity": "high"}}},
    "attempts": 3,
    "retry_after": 1.5,
    "field": "temperature",
}


def connector_error_classes() -> List[Type[errors.ConnectorError]]:
    """Every error class the package defines, found by walking the subclasses."""
    found: List[Type[errors.ConnectorError]] = []
    pending = [errors.ConnectorError]
    while pending:
        error_class = pending.pop(0)
        if error_class.__module__.startswith(PACKAGE) and error_class not in found:
            found.append(error_class)
        pending.extend(error_class.__subclasses__())
    return found


def sample_error(error_class: Type[errors.ConnectorError]) -> errors.ConnectorError:
    """An instance with every attribute set, built through the class's own constructor."""
    positional: List[Any] = []
    keywords: Dict[str, Any] = {}
    for parameter in list(inspect.signature(error_class.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        assert parameter.name in SAMPLE_ARGUMENTS, (
            f"{error_class.__name__} takes {parameter.name!r}: add a sample value to SAMPLE_ARGUMENTS")
        value = SAMPLE_ARGUMENTS[parameter.name]
        if parameter.kind is parameter.KEYWORD_ONLY:
            keywords[parameter.name] = value
        else:
            positional.append(value)
    accepts_any_keyword = any(p.kind is p.VAR_KEYWORD
                              for p in inspect.signature(error_class.__init__).parameters.values())
    if accepts_any_keyword:  # RateLimitError passes the ApiError arguments on as **kwargs
        for name in inspect.signature(errors.ApiError.__init__).parameters:
            if name in SAMPLE_ARGUMENTS and name not in keywords and name != "message":
                keywords[name] = SAMPLE_ARGUMENTS[name]
    error = error_class(*positional, **keywords)
    error.details = SAMPLE_ARGUMENTS["details"]
    return error


def assert_same_error(rebuilt: BaseException, original: errors.ConnectorError) -> None:
    assert type(rebuilt) is type(original)
    assert rebuilt.__dict__ == original.__dict__
    assert rebuilt.args == original.args
    assert str(rebuilt) == str(original)
    assert repr(rebuilt) == repr(original)
    assert rebuilt.to_dict() == original.to_dict()


CLASSES = connector_error_classes()
CLASS_IDS = [error_class.__name__ for error_class in CLASSES]


def test_the_walk_finds_every_class_the_package_exports():
    exported = {getattr(azure_openai_connector, name) for name in azure_openai_connector.__all__
                if isinstance(getattr(azure_openai_connector, name), type)}
    assert exported <= set(CLASSES)
    assert manifest.ManifestError in CLASSES


@pytest.mark.parametrize("error_class", CLASSES, ids=CLASS_IDS)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_keeps_class_and_every_attribute(error_class, protocol):
    original = sample_error(error_class)
    assert_same_error(pickle.loads(pickle.dumps(original, protocol=protocol)), original)


@pytest.mark.parametrize("error_class", CLASSES, ids=CLASS_IDS)
def test_cloudpickle_keeps_class_and_every_attribute(error_class):
    original = sample_error(error_class)
    assert_same_error(cloudpickle.loads(cloudpickle.dumps(original)), original)


@pytest.mark.parametrize("error_class", CLASSES, ids=CLASS_IDS)
def test_from_dict_rebuilds_what_to_dict_describes_through_json(error_class):
    original = sample_error(error_class)
    described = json.loads(json.dumps(original.to_dict()))
    assert_same_error(errors.from_dict(described), original)


def test_a_subclass_defined_later_round_trips_without_new_code():
    class OverloadedError(errors.ServerError):
        """Defined here, after the package: the shared machinery must cover it anyway."""

        kind = "overloaded"

    original = OverloadedError("busy", status=529, code="overloaded", request_id="req_9", attempts=2)
    assert_same_error(cloudpickle.loads(cloudpickle.dumps(original)), original)
    assert_same_error(errors.from_dict(original.to_dict()), original)


def test_an_unknown_type_with_a_status_becomes_an_api_error_keeping_its_type():
    described = {"type": "teapot", "status": 418, "code": "short_and_stout", "message": "I'm a teapot",
                 "request_id": "req_418", "attempts": 1}
    rebuilt = errors.from_dict(described)
    assert type(rebuilt) is errors.ApiError
    assert (rebuilt.status, rebuilt.code, rebuilt.request_id) == (418, "short_and_stout", "req_418")
    assert rebuilt.to_dict() == described


def test_an_unknown_type_without_a_status_becomes_a_connector_error():
    rebuilt = errors.from_dict({"type": "plugin_failure", "message": "the vault is sealed"})
    assert type(rebuilt) is errors.ConnectorError
    assert rebuilt.to_dict() == {"type": "plugin_failure", "message": "the vault is sealed"}
    assert str(rebuilt) == "the vault is sealed"


def test_from_dict_without_optional_fields_takes_the_constructor_defaults():
    rebuilt = errors.from_dict({"type": "rate_limit", "message": "slow down", "status": 429})
    assert type(rebuilt) is errors.RateLimitError
    assert rebuilt.__dict__ == errors.RateLimitError("slow down", status=429).__dict__


# --- a real process pool whose worker raises each error ------------------------------------------


def raise_sample(class_name: str) -> None:
    """Runs in a pool worker: raise the sample of the named class."""
    [error_class] = [c for c in connector_error_classes() if c.__qualname__ == class_name]
    raise sample_error(error_class)


@pytest.fixture(scope="module", params=["fork", "spawn"])
def process_pool(request: pytest.FixtureRequest) -> Iterator[ProcessPoolExecutor]:
    if request.param not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {request.param} start method here")
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context(request.param))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("error_class", CLASSES, ids=CLASS_IDS)
def test_a_pool_worker_raising_it_hands_the_parent_the_same_error(error_class, process_pool):
    future = process_pool.submit(raise_sample, error_class.__qualname__)
    with pytest.raises(error_class) as raised:
        future.result(timeout=60)
    assert_same_error(raised.value, sample_error(error_class))
    # The pool survived the error (it broke with BrokenProcessPool when unpickling failed).
    assert process_pool.submit(len, "alive").result(timeout=60) == 5
