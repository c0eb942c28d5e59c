"""Command line: run the emulator in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, List, Optional

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
    parser.add_argument("--quota", metavar="RPM,TPM", type=_budget,
                        help="quota mode: every deployment gets RPM requests and TPM tokens a minute, "
                             "answering 429 with retry-after when they are spent")
    parser.add_argument("--quota-time-scale", metavar="FACTOR", type=float, default=1.0,
                        help="with --quota: a quota minute lasts 60/FACTOR seconds (default 1)")
    return parser


def _budget(text: str) -> tuple:
    try:
        rpm, tpm = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RPM,TPM (two whole numbers), not {text!r}") from None
    if rpm < 1 or tpm < 1:
        raise argparse.ArgumentTypeError("RPM and TPM must be at least 1")
    return rpm, tpm


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until interrupted; print {"url", "api_key"} as one JSON line on stdout first."""
    options = build_parser().parse_args(argv)
    if not is_loopback(options.host):
        print(f"error: refusing to listen on non-loopback host {options.host!r}", file=sys.stderr)
        return 2
    if options.latency < 0:
        print("error: --latency must not be negative", file=sys.stderr)
        return 2
    if options.quota_time_scale <= 0:
        print("error: --quota-time-scale must be positive", file=sys.stderr)
        return 2
    stop_requested = threading.Event()
    previous = _install_stop_handlers(stop_requested)
    emulator = Emulator(api_key=options.api_key, latency=options.latency, host=options.host, port=options.port,
                        quota=options.quota, quota_time_scale=options.quota_time_scale)
    try:
        emulator.start()
        print(json.dumps({"url": emulator.url, "api_key": emulator.api_key}), flush=True)
        print(f"Emulator listening on {emulator.url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
        # A bounded wait in a loop keeps Ctrl+C responsive where signals only land between waits.
        while not stop_requested.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        _restore_handlers(previous)
    return 0


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
