"""The emulator in its own process, steered over stdin: the client's CPU and memory are then the
client's alone, and the server's work never competes with the client for one GIL.

``python -m bench.server`` prints ``{"url", "pid"}`` and then answers one JSON line per command:
``latency SECONDS``, ``reset`` (forget requests, restart the peak count, refill the quota),
``quota RPM TPM SCALE`` (quota mode for every deployment, RPM and TPM per minute sped up SCALE
times; ``quota off`` ends it) and ``stats`` (requests served, peak concurrency, the server's CPU
seconds, and in quota mode the requests admitted and refused).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict

from .common import API_KEY, ServerProcess


def serve() -> int:
    from azure_openai_connector.emulator import Emulator
    from azure_openai_connector.emulator.quota import QuotaBook

    emulator = Emulator(api_key=API_KEY, latency=0.0).start()
    print(json.dumps({"url": emulator.url}), flush=True)
    try:
        for line in sys.stdin:
            command, *arguments = line.split() or [""]
            if command == "latency":
                emulator.latency = float(arguments[0])
                reply: Dict[str, Any] = {"latency": emulator.latency}
            elif command == "reset":
                emulator.reset()
                reply = {}
            elif command == "quota":
                emulator.quota = None if arguments == ["off"] else QuotaBook(
                    (int(arguments[0]), int(arguments[1])), time_scale=float(arguments[2]))
                reply = {"quota": arguments}
            elif command == "stats":
                reply = {"requests": emulator.request_count, "peak_concurrency": emulator.peak_concurrency,
                         "cpu_seconds": time.process_time()}
                if emulator.quota is not None:
                    reply.update(admitted=emulator.quota.admitted, refused=emulator.quota.refused)
            else:
                reply = {"error": f"unknown command {command!r}"}
            print(json.dumps(reply), flush=True)
    finally:
        emulator.stop()
    return 0


class EmulatorProcess(ServerProcess):
    """Client side of `serve()`: start, steer and stop the emulator process."""

    def __init__(self) -> None:
        super().__init__(["-m", "bench.server"])

    def _ask(self, command: str) -> Dict[str, Any]:
        assert self._process is not None
        self._process.stdin.write(command + "\n")  # type: ignore[union-attr]
        self._process.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self._process.stdout.readline())  # type: ignore[union-attr]

    def set_latency(self, seconds: float) -> None:
        self._ask(f"latency {seconds!r}")

    def reset(self) -> None:
        self._ask("reset")

    def set_quota(self, rpm: int, tpm: int, time_scale: float) -> None:
        self._ask(f"quota {rpm} {tpm} {time_scale!r}")

    def quota_off(self) -> None:
        self._ask("quota off")

    def stats(self) -> Dict[str, Any]:
        return self._ask("stats")

    # What the connector and the baselines are pointed at ---------------------------------
    def connection(self) -> Dict[str, Any]:
        """An Azure connection to the emulator (dated API, deployment in the path)."""
        return {"api_key": API_KEY, "organization": "bench", "endpoint": self.url}


if __name__ == "__main__":
    raise SystemExit(serve())
