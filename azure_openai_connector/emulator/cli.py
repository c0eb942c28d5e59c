"""Command line: run the emulator in the foreground until SIGINT or SIGTERM.

It announces itself on stdout first: one JSON line ``{"url", "api_key"}`` (the default, for
programs), or with ``--print env`` the shell lines that point the connector at it.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
from typing import Any, Dict, List, Optional

from .lifecycle import DEFAULT_DEPLOYMENTS
from .server import Emulator, is_loopback


# Azure's v1 API, the connector's default: routes v1 serves only in preview (image generation)
# are asked for with ?api-version=preview by the connector itself.
ANNOUNCED_API_VERSION = "v1"


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
    parser.add_argument("--print", choices=("json", "env"), default="json", dest="announce",
                        help="announce as one JSON line (default) or as environment variables to paste")
    parser.add_argument("--quota", metavar="RPM,TPM", type=_budget,
                        help="quota mode: every deployment gets RPM requests and TPM tokens a minute, "
                             "answering 429 with retry-after when they are spent")
    parser.add_argument("--quota-time-scale", metavar="FACTOR", type=float, default=1.0,
                        help="with --quota: a quota minute lasts 60/FACTOR seconds (default 1)")
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


def environment_lines(url: str, api_key: str) -> str:
    """Shell lines that point the connector (and the official SDKs) at the emulator: Azure, then OpenAI."""
    return (f"export AZURE_OPENAI_ENDPOINT={url}\n"
            f"export AZURE_OPENAI_API_KEY={api_key}\n"
            f"export OPENAI_API_VERSION={ANNOUNCED_API_VERSION}\n"
            f"export OPENAI_BASE_URL={url}/v1\n"
            f"export OPENAI_API_KEY={api_key}\n")


def _announce(emulator: Emulator, how: str) -> None:
    if how == "env":
        sys.stdout.write(environment_lines(emulator.url, emulator.api_key))
    else:
        sys.stdout.write(json.dumps({"url": emulator.url, "api_key": emulator.api_key}) + "\n")
    sys.stdout.flush()


def _reader_gone(stream: Any) -> bool:
    """True when `stream` is a pipe whose reading end was closed (poll reports an error on it)."""
    import select
    import stat

    try:
        descriptor = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(descriptor).st_mode):
            return False
        poller = select.poll()
        poller.register(descriptor, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _silence_stdout() -> None:
    """After a closed pipe: send stdout to /dev/null so Python's exit-time flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _budget(text: str) -> tuple:
    try:
        rpm, tpm = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RPM,TPM (two whole numbers), not {text!r}") from None
    if rpm < 1 or tpm < 1:
        raise argparse.ArgumentTypeError("RPM and TPM must be at least 1")
    return rpm, tpm


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until interrupted; announce the URL and key on stdout first (see the module docstring)."""
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
                        deployments=parse_deployments(options.deployments),
                        quota=options.quota, quota_time_scale=options.quota_time_scale)
    try:
        try:
            emulator.start()
        except OSError as error:
            reason = "the port is in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
            print(f"error: cannot listen on {options.host}:{options.port}: {reason}", file=sys.stderr, flush=True)
            return 1
        try:
            _announce(emulator, options.announce)
        except BrokenPipeError:
            _silence_stdout()  # nobody reads what we print (`... | head -1`): stop quietly
            return 0
        print(f"Emulator listening on {emulator.url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
        if options.announce == "env":
            print("Paste the lines above into another shell; with both sets the connector uses the Azure "
                  "one (unset AZURE_OPENAI_API_KEY to try OpenAI).", file=sys.stderr, flush=True)
        # A bounded wait in a loop keeps Ctrl+C responsive where signals only land between waits.
        while not stop_requested.wait(0.5):
            if _reader_gone(sys.stdout):
                _silence_stdout()  # `... | head -1` has what it wanted: stop instead of serving unseen
                break
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
