"""Constants and small doubles shared by the test modules (import as `support`)."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Type

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


class LoopbackServer:
    """A request handler served on 127.0.0.1:<free port> by a daemon thread inside a `with`
    block; the server is shut down, closed and its thread joined on the way out."""

    def __init__(self, handler: Type[BaseHTTPRequestHandler], tls: Optional[ssl.SSLContext] = None) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if tls is not None:  # every accepted connection shakes hands with this context's certificate
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
