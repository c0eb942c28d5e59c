"""Process-wide state a forked child must renew instead of inheriting: pooled sockets and locks.

After ``fork()`` (Celery's prefork pool, gunicorn ``--preload``, ``multiprocessing`` with fork) a
child holds copies of the parent's keep-alive sockets: two processes reading one socket take each
other's answers. And a lock another thread held at the moment of the fork stays locked forever in
the child. Every object holding either registers here; in the child, each one renews its state
(new locks, new sessions) without closing what it inherited, since those sockets are the parent's.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Callable, Generic, List, Optional, Protocol, TypeVar

logger = logging.getLogger(__name__)


class RenewedAfterFork(Protocol):
    def after_fork_in_child(self) -> None:
        """Drop inherited sockets (without closing them) and create fresh locks."""


Value = TypeVar("Value")

_owners: "weakref.WeakSet[RenewedAfterFork]" = weakref.WeakSet()
_functions: List[Callable[[], None]] = []
_registry_lock = threading.Lock()


def renew_after_fork(owner: RenewedAfterFork) -> None:
    """Call ``owner.after_fork_in_child()`` in every forked child while `owner` is alive."""
    with _registry_lock:
        _owners.add(owner)


def on_fork_in_child(function: Callable[[], None]) -> Callable[[], None]:
    """Decorator for module-level renewals (a module's own locks); returns `function`."""
    with _registry_lock:
        _functions.append(function)
    return function


class ProcessSingleton(Generic[Value]):
    """A value built on first use and shared by every thread of the process (a fork inherits the
    value, when it is safe to share, and gets a fresh lock)."""

    def __init__(self, factory: Callable[[], Value]) -> None:
        self._factory = factory
        self._value: Optional[Value] = None
        self._lock = threading.Lock()
        renew_after_fork(self)

    def __call__(self) -> Value:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = self._value = self._factory()
        return value

    def peek(self) -> Optional[Value]:
        """The value if it was built already, else None (never builds it)."""
        return self._value

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()


def _renew_everything() -> None:
    global _registry_lock
    # Only the forking thread survives: nobody else can be holding the registry lock's copy now,
    # but it may have been held at the moment of the fork.
    _registry_lock = threading.Lock()
    for function in list(_functions):
        function()
    for owner in list(_owners):
        try:
            owner.after_fork_in_child()
        except Exception:  # noqa: BLE001 - one broken owner must not leave the others shared
            logger.exception("renewing %r after fork failed", owner)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_everything)
