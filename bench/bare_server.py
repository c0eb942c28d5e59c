"""A bare loopback HTTP/1.1 server with a fixed latency and one canned chat completion, in its own
process: the floor for the per-call benchmark, where the emulator's own work (parsing, checking
and recording every request) would otherwise be most of what is measured.

``python -m bench.bare_server [--latency SECONDS]`` prints ``{"url"}`` and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from typing import Optional

from .common import ServerProcess

ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "system_fingerprint": "fp_bench",
    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": "Hello from the bench server.", "refusal": None}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
}, separators=(",", ":")).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n"
            b"content-length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if latency:
                await asyncio.sleep(latency)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server")
    parser.add_argument("--latency", type=float, default=0.0)
    options = parser.parse_args(argv)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    address: list = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(
            lambda r, w: _handle(r, w, options.latency), "127.0.0.1", 0, backlog=1024))
        address.append(server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait()
    print(json.dumps({"url": f"http://127.0.0.1:{address[0]}"}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    return 0


class BareServerProcess(ServerProcess):
    """Start and stop `serve()` in its own process."""

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(["-m", "bench.bare_server", "--latency", repr(latency)])
        self.latency = latency


if __name__ == "__main__":
    raise SystemExit(serve())
