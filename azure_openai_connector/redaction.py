"""Secrets out of everything the connector shows: text, headers, JSON, and urllib3's log lines.

One marker, one function for text (`redact`), and the helpers built on it, so every place that
hides a key hides it the same way.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from typing import Any, Dict, Iterable, Mapping, Protocol, Tuple
from urllib.parse import quote, quote_plus

from . import process_state
from .process_state import ProcessSingleton

REDACTED = "***"
SECRET_HEADERS = frozenset({"authorization", "api-key", "proxy-authorization", "cookie",
                            "set-cookie", "x-api-key", "ocp-apim-subscription-key"})
# Shorter values are too likely to occur by chance in ordinary text to be replaced everywhere.
MIN_SECRET_LENGTH = 4


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text`, also in the forms a secret takes on its way out: escaped as
    by repr() (exception texts quote values that way), JSON-escaped (a key holding `"` or `\\`),
    and percent-encoded (a key holding `+`, `/`, `=` or `%` in a logged URL)."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            for form in encoded_forms(secret):
                if form in text:
                    text = text.replace(form, REDACTED)
    return text


def encoded_forms(secret: str) -> Tuple[str, ...]:
    """The secret and every spelling of it the connector or a server may print, longest first."""
    forms = _FORMS_CACHE.get(secret)
    if forms is None:
        spellings = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1],
                     json.dumps(secret, ensure_ascii=False)[1:-1],
                     quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret)}
        spellings |= {spelling.lower() for spelling in spellings if "%" in spelling}
        forms = tuple(sorted((form for form in spellings if form), key=len, reverse=True))
        if len(_FORMS_CACHE) > 1024:
            _FORMS_CACHE.clear()
        _FORMS_CACHE[secret] = forms
    return forms


_FORMS_CACHE: Dict[str, Tuple[str, ...]] = {}


def redact_bytes(content: bytes, secrets: Iterable[str]) -> bytes:
    """`content` with every secret's UTF-8 bytes hidden: a binary answer echoing the key must not
    carry it out base64-encoded, where no text redaction can see it."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            for form in encoded_forms(secret):
                encoded = form.encode("utf-8", "surrogatepass")
                if encoded in content:
                    content = content.replace(encoded, REDACTED.encode())
    return content


def hide_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """The one place every outgoing value passes: a step's result (JSON), or an error, whose
    message, fields (code, param, type, request id) and details are all redacted in place."""
    secrets = tuple(secret for secret in secrets if isinstance(secret, str) and secret)
    if not secrets:
        return value
    if isinstance(value, BaseException):
        for name, member in list(vars(value).items()):
            if isinstance(member, str):
                setattr(value, name, redact(member, secrets))
            elif isinstance(member, (dict, list, tuple)):
                setattr(value, name, redact_json(member, secrets))
        value.args = tuple(redact(arg, secrets) if isinstance(arg, str) else arg for arg in value.args)
        return value
    return redact_json(value, secrets)


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
    if not ordered or not _may_hold_secret(value, ordered):
        return value
    return redacted_copy(value, ordered)


def redacted_copy(value: Any, ordered: Tuple[str, ...]) -> Any:
    """The walk behind `redact_json`: a copy of `value` with every string and key redacted
    (`ordered`: the secrets, longest first)."""

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


def _may_hold_secret(value: Any, secrets: Tuple[str, ...]) -> bool:
    """False only when no string or key in `value` holds any secret in any of its forms: one C-speed
    serialization and a substring search instead of a Python walk over every value, so a step's
    result (which almost never echoes a key) is returned as it is.

    Sound because JSON escapes text one character at a time: a string that contains a form
    serializes to text that contains the form's escaped spelling, and a string that is exactly a
    short secret serializes to that secret's quoted spelling."""
    try:
        text = _SERIALIZED.encode(value)
    except (TypeError, ValueError):  # not plain JSON (or circular): let the walk decide
        return True
    return any(spelling in text for secret in secrets for spelling in _serialized_forms(secret))


def _serialized_forms(secret: str) -> Tuple[str, ...]:
    """How the secret's forms look inside serialized JSON text (see `_may_hold_secret`)."""
    spellings = _SERIALIZED_CACHE.get(secret)
    if spellings is None:
        found = {json.dumps(secret, ensure_ascii=False)}  # quoted: a string that is exactly the secret
        if len(secret) >= MIN_SECRET_LENGTH:
            found |= {json.dumps(form, ensure_ascii=False)[1:-1] for form in encoded_forms(secret)}
        spellings = tuple(found)
        if len(_SERIALIZED_CACHE) > 1024:
            _SERIALIZED_CACHE.clear()
        _SERIALIZED_CACHE[secret] = spellings
    return spellings


_SERIALIZED_CACHE: Dict[str, Tuple[str, ...]] = {}
_SERIALIZED = json.JSONEncoder(ensure_ascii=False)  # made once: json.dumps with options makes one per call


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
    # Both loggers print request lines: connectionpool the URL, connection the request target.
    for name in ("urllib3.connectionpool", "urllib3.connection"):
        logging.getLogger(name).addFilter(installed)
    return installed


# Installed on first use (a client's creation), so importing the package changes no logging.
_urllib_filter = ProcessSingleton(_installed_urllib_filter)


def hide_secrets_from_urllib3_logs(holder: HoldsSecrets) -> None:
    """Keep `holder`'s secrets out of urllib3's log lines for as long as it lives."""
    _urllib_filter().add(holder)
