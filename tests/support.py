"""Constants and small doubles shared by the test modules (import as `support`)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator, List

from azure_openai_connector import hookimpl

API_KEY = "test-key-5f0c1e2d9a7b4c3e8d6f"


class RecordedSleep:
    """Stands in for time.sleep: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: List[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@contextmanager
def registered(plugin: Any, name: str) -> Iterator[Any]:
    """`plugin` registered on the connector's extension manager for the block, then removed."""
    from azure_openai_connector.extensions import extension_manager

    manager = extension_manager()
    manager.register(plugin, name=name)
    try:
        yield plugin
    finally:
        manager.unregister(name=name)


class AttemptRecorder:
    """An extension plugin that sees every attempt's outcome (an `Exchange`)."""

    def __init__(self) -> None:
        self.exchanges: List[Any] = []
        self._lock = threading.Lock()

    @hookimpl
    def http_request_finished(self, exchange: Any) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    @property
    def retry_delays(self) -> List[float]:
        return [exchange.retry_delay for exchange in self.exchanges if exchange.will_retry]
