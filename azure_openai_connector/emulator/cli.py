"""Command line: run the emulator in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, Dict, List, Optional

from .lifecycle import DEFAULT_DEPLOYMENTS
from .server import Emulator, is_loopback


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m azure_openai_connector.emulator",
        description="Local Azure OpenAI / OpenAI API emulator (loopback only).",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    parser.add_argument("--api-key", default="emulator-key", help="the key clients must send")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument(
        "--deployments", default=",".join(DEFAULT_DEPLOYMENTS), metavar="NAME[=MODEL],...|any",
        help="the deployment (and OpenAI model) names inference accepts, each optionally serving another "
             "model; others get 404 DeploymentNotFound / model_not_found; 'any' accepts every name "
             "(default: %(default)s)")
    return parser


def parse_deployments(text: str) -> Optional[Dict[str, str]]:
    """`name[=model],...` as {name: model}; `any` as None (every name accepted)."""
    if text.strip() == "any":
        return None
    table: Dict[str, str] = {}
    for item in text.split(","):
        name, _, model = item.strip().partition("=")
        if name:
            table[name] = model or name
    return table


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until interrupted; print {"url", "api_key"} as one JSON line on stdout first."""
    options = build_parser().parse_args(argv)
    if not is_loopback(options.host):
        print(f"error: refusing to listen on non-loopback host {options.host!r}", file=sys.stderr)
        return 2
    if options.latency < 0:
        print("error: --latency must not be negative", file=sys.stderr)
        return 2
    stop_requested = threading.Event()
    previous = _install_stop_handlers(stop_requested)
    emulator = Emulator(api_key=options.api_key, latency=options.latency, host=options.host, port=options.port,
                        deployments=parse_deployments(options.deployments))
    try:
        emulator.start()
        print(json.dumps({"url": emulator.url, "api_key": emulator.api_key}), flush=True)
        print(f"Emulator listening on {emulator.url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
        print(export_lines(emulator.url, emulator.api_key), file=sys.stderr, flush=True)
        # A bounded wait in a loop keeps Ctrl+C responsive where signals only land between waits.
        while not stop_requested.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        _restore_handlers(previous)
    return 0


def export_lines(url: str, api_key: str) -> str:
    """Ready-to-paste environment for an Azure and an OpenAI setup (OpenAI's base URL ends in /v1)."""
    return (f"# Azure OpenAI (v1 API):\n"
            f"export AZURE_OPENAI_ENDPOINT={url} AZURE_OPENAI_API_KEY={api_key} OPENAI_API_VERSION=v1\n"
            f"# or OpenAI:\n"
            f"export OPENAI_BASE_URL={url}/v1 OPENAI_API_KEY={api_key}")


def _install_stop_handlers(stop_requested: threading.Event) -> List[Any]:
    def request_stop(signum: int, frame: Any) -> None:
        stop_requested.set()

    installed = []
    if threading.current_thread() is not threading.main_thread():
        return installed  # signals can only be handled on the main thread
    for signum in (signal.SIGINT, signal.SIGTERM):
        installed.append((signum, signal.signal(signum, request_stop)))
    return installed


def _restore_handlers(previous: List[Any]) -> None:
    for signum, handler in previous:
        signal.signal(signum, handler)
