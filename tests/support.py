"""Constants and small doubles shared by the test modules (import as `support`)."""

from __future__ import annotations

from typing import List

API_KEY = "test-key-5f0c1e2d9a7b4c3e8d6f"


class RecordedSleep:
    """Stands in for time.sleep: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: List[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
