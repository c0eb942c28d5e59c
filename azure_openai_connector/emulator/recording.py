"""What the emulator remembers about each request: the recorded request value and its headers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple


class Headers(Mapping[str, str]):
    """Read-only request headers whose names are matched case-insensitively.

    Names are stored lower-cased (iteration yields lower-case names); a header sent more
    than once is kept as one value joined with ", ", as HTTP allows for list headers.
    """

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()) -> None:
        values: Dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            values[key] = f"{values[key]}, {value}" if key in values else value
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._values.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it (the body already read and parsed)."""

    method: str
    path: str
    query: Dict[str, str]
    headers: Headers
    body: bytes
    json: Any = None
    files: List[Dict[str, Any]] = field(default_factory=list)
    form: Dict[str, str] = field(default_factory=dict)
    fault: Optional[str] = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        # The body and headers can be large or secret; keep reprs short in test output.
        fault = f", fault={self.fault!r}" if self.fault else ""
        return f"RecordedRequest({self.method} {self.path}, {len(self.body)} bytes{fault})"


def loose_json(body: bytes) -> Tuple[bool, Any]:
    """(parsed_ok, value) for a request body; an empty body is not JSON."""
    if not body:
        return False, None
    try:
        return True, json.loads(body)
    except ValueError:
        return False, None
