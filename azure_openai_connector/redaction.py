"""Secrets out of everything the connector shows: text, headers, JSON, and urllib3's log lines.

One marker, one function for text (`redact`), and the helpers built on it, so every place that
hides a key hides it the same way.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Dict, Iterable, Mapping, Protocol, Tuple

from . import process_state
from .process_state import ProcessSingleton

REDACTED = "***"
SECRET_HEADERS = frozenset({"authorization", "api-key", "proxy-authorization", "cookie",
                            "set-cookie", "x-api-key", "ocp-apim-subscription-key"})
# Shorter values are too likely to occur by chance in ordinary text to be replaced everywhere.
MIN_SECRET_LENGTH = 4


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text`, also where it appears escaped as by repr() (exception
    texts quote values that way, so "key\\n" would otherwise show the key)."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            if secret in text:
                text = text.replace(secret, REDACTED)
            escaped = repr(secret)[1:-1]
            if escaped != secret and escaped in text:
                text = text.replace(escaped, REDACTED)
    return text


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> Dict[str, str]:
    """A copy of `headers` safe to log: auth headers and any value holding a secret hidden."""
    secrets = tuple(secrets)
    return {name: REDACTED if name.lower() in SECRET_HEADERS else redact(str(value), secrets)
            for name, value in headers.items()}


def redact_json(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON value with every secret hidden in its strings and object keys, at any
    depth. A string that is exactly a secret is hidden whatever the secret's length."""
    ordered = tuple(sorted({secret for secret in secrets if isinstance(secret, str) and secret},
                           key=len, reverse=True))  # longest first: one secret may contain another
    if not ordered:
        return value

    def text(item: str) -> str:
        return REDACTED if item in ordered else redact(item, ordered)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, Mapping):
            return {text(key) if isinstance(key, str) else key: walk(member) for key, member in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(member) for member in item]
        return item

    return walk(value)


def credentials(header_values: Iterable[str]) -> Tuple[str, ...]:
    """Auth header values and the credential inside each ("Bearer <token>" -> also "<token>"): a
    server echoing a token quotes it without its scheme."""
    found = []
    for value in header_values:
        found.append(value)
        token = value.partition(" ")[2].strip()
        if token:
            found.append(token)
    return tuple(found)


class HoldsSecrets(Protocol):
    """Anything with a connection whose secrets must never reach a log line (an HttpClient)."""

    @property
    def connection(self) -> Any: ...


class _UrllibRedactingFilter(logging.Filter):
    """urllib3 logs every request line at DEBUG, URL and query included, where a raw request
    may carry anything (a key in `query_params`, say): hide the secrets of every live client."""

    def __init__(self) -> None:
        super().__init__()
        self._holders: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def add(self, holder: HoldsSecrets) -> None:
        with self._lock:
            self._holders.add(holder)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = tuple(secret for holder in list(self._holders) for secret in holder.connection.secrets)
        if secrets:
            message = record.getMessage()
            hidden = redact(message, secrets)
            if hidden != message:
                record.msg, record.args = hidden, None
        return True


def _installed_urllib_filter() -> _UrllibRedactingFilter:
    installed = _UrllibRedactingFilter()
    process_state.renew_after_fork(installed)
    logging.getLogger("urllib3.connectionpool").addFilter(installed)
    return installed


# Installed on first use (a client's creation), so importing the package changes no logging.
_urllib_filter = ProcessSingleton(_installed_urllib_filter)


def hide_secrets_from_urllib3_logs(holder: HoldsSecrets) -> None:
    """Keep `holder`'s secrets out of urllib3's log lines for as long as it lives."""
    _urllib_filter().add(holder)
