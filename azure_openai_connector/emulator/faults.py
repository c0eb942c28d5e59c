"""Fault values (how a request should misbehave) and the plan that hands them out per request."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence, Tuple, Union

from .recording import RecordedRequest

Matcher = Union[None, str, Callable[[RecordedRequest], bool]]


@dataclass(frozen=True)
class Fault:
    """One way to misbehave. Build it with the classmethods; `kind` names the behaviour."""

    kind: str
    status_code: Optional[int] = None
    message: Optional[str] = None
    extra_headers: Tuple[Tuple[str, str], ...] = ()
    code: Optional[str] = None
    param: Optional[str] = None
    retry_after: Union[int, float, str, None] = None
    retry_after_ms: Union[int, float, str, None] = None
    retry_after_date: bool = False
    delay: float = 0.0
    location: Optional[str] = None
    spec_shape: bool = False

    @classmethod
    def rate_limit(
        cls,
        retry_after: Union[int, float, str, None] = None,
        retry_after_ms: Union[int, float, str, None] = None,
        retry_after_date: bool = False,
        code: str = "rate_limit_exceeded",
    ) -> "Fault":
        return cls(
            "rate_limit",
            status_code=429,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            retry_after_date=retry_after_date,
            code=code,
        )

    @classmethod
    def insufficient_quota(cls) -> "Fault":
        return cls("insufficient_quota", status_code=429, code="insufficient_quota")

    @classmethod
    def status(
        cls, code: int, message: Optional[str] = None, headers: Optional[Mapping[str, str]] = None
    ) -> "Fault":
        return cls("status", status_code=int(code), message=message, extra_headers=_frozen_headers(headers))

    @classmethod
    def unauthorized(cls) -> "Fault":
        return cls("unauthorized", status_code=401)

    @classmethod
    def not_found(cls) -> "Fault":
        return cls("not_found", status_code=404)

    @classmethod
    def bad_request(
        cls, message: str = "Invalid request (emulated fault).", param: Optional[str] = None, code: Optional[str] = None
    ) -> "Fault":
        return cls("bad_request", status_code=400, message=message, param=param, code=code)

    @classmethod
    def content_filter_prompt(cls, spec_shape: bool = False) -> "Fault":
        return cls("content_filter_prompt", status_code=400, spec_shape=spec_shape)

    @classmethod
    def content_filter_output(cls) -> "Fault":
        return cls("content_filter_output", status_code=200)

    @classmethod
    def slow(cls, seconds: float) -> "Fault":
        return cls("slow", delay=float(seconds))

    @classmethod
    def drop(cls) -> "Fault":
        return cls("drop")

    @classmethod
    def drop_mid_body(cls) -> "Fault":
        return cls("drop_mid_body", status_code=200)

    @classmethod
    def malformed(cls) -> "Fault":
        return cls("malformed", status_code=200)

    @classmethod
    def content_filter_not_run(cls) -> "Fault":
        """A 200 answer whose output the content filter did not check (an `error` in each
        choice's content_filter_results, as Azure reports it)."""
        return cls("content_filter_not_run", status_code=200)

    @classmethod
    def invalid_tool_arguments(cls) -> "Fault":
        """A 200 answer whose tool calls carry arguments that are not JSON (models do that)."""
        return cls("invalid_tool_arguments", status_code=200)

    @classmethod
    def missing_choices(cls) -> "Fault":
        return cls("missing_choices", status_code=200)

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> "Fault":
        return cls("redirect", status_code=int(status), location=location)


def _frozen_headers(headers: Optional[Mapping[str, str]]) -> Tuple[Tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in (headers or {}).items())


def default_random_faults() -> List[Fault]:
    """Transient failures a well-behaved client should retry through."""
    return [Fault.status(500), Fault.status(502), Fault.status(503), Fault.rate_limit(retry_after_ms=10)]


class _Rule:
    __slots__ = ("fault", "remaining", "match")

    def __init__(self, fault: Fault, remaining: Optional[int], match: Matcher) -> None:
        self.fault = fault
        self.remaining = remaining
        self.match = match

    def applies_to(self, request: RecordedRequest) -> bool:
        if self.match is None:
            return True
        if isinstance(self.match, str):
            return self.match in request.path or self.match in request.text
        try:
            return bool(self.match(request))
        except Exception:  # a broken matcher must not take the server down
            return False


class FaultPlan:
    """Scripted faults (FIFO, each with a use count) plus optional seeded random faults.

    Not thread-safe on its own: the emulator calls it under its state lock so that the
    order of arrival decides who gets which fault.
    """

    def __init__(self) -> None:
        self._rules: List[_Rule] = []
        self._random_rate = 0.0
        self._random_faults: Sequence[Fault] = ()
        self._rng = random.Random(0)

    def script(self, fault: Fault, times: Optional[int], match: Matcher) -> None:
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {type(fault).__name__}")
        if times is not None and times < 1:
            raise ValueError("times must be a positive integer or None (forever)")
        self._rules.append(_Rule(fault, times, match))

    def set_random(self, rate: float, faults: Optional[Sequence[Fault]], seed: Optional[int]) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        chosen = list(faults) if faults is not None else default_random_faults()
        if rate > 0 and not chosen:
            raise ValueError("random faults need at least one Fault")
        self._random_rate = float(rate)
        self._random_faults = tuple(chosen)
        self._rng = random.Random(seed)

    def clear(self) -> None:
        self._rules.clear()
        self._random_rate = 0.0
        self._random_faults = ()

    def next_fault(self, request: RecordedRequest) -> Optional[Fault]:
        """The fault this request gets, consuming one use of the first matching rule."""
        for position, rule in enumerate(self._rules):
            if rule.applies_to(request):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self._rules[position]
                return rule.fault
        if self._random_rate > 0 and self._rng.random() < self._random_rate:
            return self._rng.choice(self._random_faults)
        return None
