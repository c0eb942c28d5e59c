"""The playground's server: binds 127.0.0.1, owns the emulator, and the serve loop of the command.

    GET  /                 the page (needs the token: ?token=... once, then the cookie it sets)
    GET  /static/NAME      the page's script, style sheet and the vendored forms bundle
    GET  /api/connector    icon, label, description, the connection form, every action with its form
    POST /api/run          {action, connection, inputs} -> {ok, result | error, duration_ms, ran_on}

Steps run through ``azure_openai_connector.run_action``, exactly as a host runs them. When the
page's connection has no API key, the server's connection is used: the environment's credentials
(as the CLI reads them), or else the emulator started with the playground. API keys are never
sent back (every answer is scrubbed of them), never logged and never written anywhere.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any, Dict, Mapping, Optional

from ..environment import connection_from_env
from .app import PlaygroundApp, Runner
from .handler import PlaygroundHTTPServer

HOST = "127.0.0.1"


class Playground:
    """The playground server; nothing is bound until `start()`. Use as a context manager.

    `environ` is where credentials are looked for (default: `os.environ`); `runner` runs a step
    (default: `azure_openai_connector.run_action`, the path a host takes).
    """

    def __init__(self, *, port: int = 0, environ: Optional[Mapping[str, str]] = None,
                 token: Optional[str] = None, runner: Optional[Runner] = None) -> None:
        self._port = int(port)
        self._environ = dict(os.environ if environ is None else environ)
        self.token = token or secrets.token_urlsafe(32)
        self._runner = runner
        self._emulator: Any = None
        self._emulator_key = ""
        self._app: Optional[PlaygroundApp] = None
        self._server: Optional[PlaygroundHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "Playground":
        """Start the emulator when the environment has no credentials, bind, and serve in a thread."""
        if self._server is not None:
            return self
        env_connection = connection_from_env(self._environ)
        if env_connection is None:
            from ..emulator import Emulator

            self._emulator_key = "playground-" + secrets.token_urlsafe(16)
            self._emulator = Emulator(api_key=self._emulator_key).start()
        try:
            app = PlaygroundApp(env_connection=env_connection, runner=self._runner,
                                emulator_url=self._emulator.url if self._emulator is not None else None,
                                emulator_key=self._emulator_key)
            app.load_static()
            server = PlaygroundHTTPServer((HOST, self._port), app, self.token)
        except BaseException:
            self._stop_emulator()
            raise
        self._app, self._server = app, server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"playground-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5.0)
        self._stop_emulator()

    def _stop_emulator(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None

    def __enter__(self) -> "Playground":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def app(self) -> PlaygroundApp:
        """The page's logic (callable without HTTP)."""
        if self._app is None:
            raise RuntimeError("the playground is not running")
        return self._app

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the playground is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The page's address without the token."""
        return f"http://{HOST}:{self.port}/"

    @property
    def page_url(self) -> str:
        """The address to open: it carries the token once, then a cookie does."""
        return f"{self.url}?token={self.token}"

    @property
    def emulator(self) -> Any:
        """The emulator started with the playground (None when the environment has credentials)."""
        return self._emulator

    @property
    def server_connection(self) -> Dict[str, Any]:
        """Where a step without an API key runs (no secrets): source, service, note."""
        return self.app.server_connection


def serve(*, port: int = 0, environ: Optional[Mapping[str, str]] = None, open_browser: bool = False) -> int:
    """Run the playground until interrupted (Ctrl+C or SIGTERM); prints the URL to open on stdout."""
    import signal
    import sys

    stopping = threading.Event()
    playground = Playground(port=port, environ=environ)
    try:
        playground.start()
    except OSError as error:
        sys.stderr.write(f"cannot listen on {HOST}:{port}: {error.strerror or error}\n")
        return 1
    previous = None
    try:
        try:
            previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        except ValueError:  # not the main thread
            previous = None
        where = playground.server_connection
        sys.stderr.write(
            "Azure OpenAI connector playground\n"
            + ("  steps without an API key run on the environment's credentials\n" if where["source"] == "environment"
               else "  no credentials in the environment: steps without an API key run on the built-in emulator\n")
            + "  open this address in a browser (it carries the access token); Ctrl+C stops the server:\n")
        sys.stderr.flush()
        sys.stdout.write(playground.page_url + "\n")
        sys.stdout.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(playground.page_url)
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        playground.stop()
        sys.stderr.write("playground stopped\n")
    return 0
