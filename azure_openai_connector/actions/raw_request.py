"""Raw Request: one HTTP request the user describes, sent to a path on the connection's own host
with the connection's auth; the user can neither leave that host nor replace its credentials."""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import logging
import mimetypes
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote_to_bytes

from ..connection import Connection
from ..errors import InputValidationError
from ..http import RetryPolicy, Response
from ..manifest import Action
from ..redaction import redact, redact_bytes, redact_headers
from . import Step

logger = logging.getLogger(__name__)

# Headers that carry credentials or that the connection and the HTTP layer own: a step may not
# set them, so a workflow can neither swap the connection's identity nor smuggle a second request.
RESERVED_HEADERS = frozenset({
    "authorization", "api-key", "proxy-authorization", "cookie", "host", "content-length",
    "transfer-encoding", "openai-organization", "openai-project", "x-api-key",
    "ocp-apim-subscription-key", "connection", "te", "trailer", "upgrade", "keep-alive",
})
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
UNSAFE_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CR, LF, NUL... (tab is allowed)
NON_LATIN1 = re.compile(r"[^\x00-\xff]")
METHODS_WITHOUT_BODY = ("GET", "HEAD")
# The media type becomes a part header, so only a plain type/subtype is read as one; anything
# else is not taken for a data URL and is sent as the text it is.
DATA_URL = re.compile(r"^data:(?P<mime>[\w!#$&^.+-]+/[\w!#$&^.+-]+)?(?P<params>(?:;[\w!#$&^.+=-]*)*),"
                      r"(?P<payload>.*)\Z", re.DOTALL)
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
DEBUG_BODY_LIMIT = 2048
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
DEBUG_FIELD_LIMIT = 200
# The seed's delay input goes up to a minute; exponential growth beyond that only stalls a step.
MAX_RETRY_DELAY = 60.0


@dataclass(frozen=True)
class FilePart:
    """One file of a multipart upload, decoded from its text or data-URL value."""

    field: str
    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class Body:
    """What goes on the wire: raw bytes, or multipart fields and files (never both)."""

    data: Optional[bytes] = None
    content_type: Optional[str] = None
    form: Tuple[Tuple[str, str], ...] = ()
    files: Tuple[FilePart, ...] = ()

    @property
    def is_multipart(self) -> bool:
        return bool(self.form or self.files)


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Everything that would make the request unsafe or unsendable, found before anything is sent."""
    return request_problems(inputs, connection)


def request_problems(inputs: Dict[str, Any], connection: Connection) -> List[Dict[str, str]]:
    """Problems with the URL, the headers and the body, each with its input path."""
    return (url_problems(inputs, connection) + header_problems(inputs)
            + body_problems(inputs) + file_parts(inputs)[1])


def url_problems(inputs: Dict[str, Any], connection: Connection) -> List[Dict[str, str]]:
    try:
        connection.raw_url(inputs["url"], inputs.get("query_params"))
    except InputValidationError as refusal:
        return list(refusal.errors)
    return []


def header_problems(inputs: Dict[str, Any]) -> List[Dict[str, str]]:
    problems: List[Dict[str, str]] = []
    multipart = bool(inputs.get("form_data") or inputs.get("file_data"))
    for name, value in inputs.get("headers", {}).items():
        path = f"headers/{name}"
        if not HEADER_NAME.match(name):
            problems.append({"path": path, "message": "is not a valid header name"})
        elif name.lower() in RESERVED_HEADERS:
            problems.append({"path": path, "message": "is set by the connection or the HTTP layer "
                                                      "and cannot be set or overridden here"})
        elif multipart and name.lower() == "content-type":
            problems.append({"path": path, "message": "is set by the connector for multipart uploads "
                                                      "(it carries the part boundary)"})
        if UNSAFE_HEADER_VALUE.search(value):
            problems.append({"path": path, "message": "may not contain line breaks or control characters"})
        elif NON_LATIN1.search(value):
            # HTTP sends header values as Latin-1 bytes; anything else cannot be sent at all.
            problems.append({"path": path, "message": "may only hold Latin-1 characters; "
                                                      "percent-encode or base64-encode other text"})
        elif value[:1] in (" ", "\t"):
            problems.append({"path": path, "message": "may not start with a space or tab"})
    return problems


def body_problems(inputs: Dict[str, Any]) -> List[Dict[str, str]]:
    problems: List[Dict[str, str]] = []
    given = [name for name in ("data", "form_data", "file_data")
             if name in inputs and (name == "data" or inputs[name])]
    if "data" in given and len(given) > 1:
        problems.append({"path": "data", "message": "cannot be combined with form_data or file_data; "
                                                    "send either a body or a multipart upload"})
    if given and inputs["method"] in METHODS_WITHOUT_BODY:
        problems += [{"path": name, "message": f"a {inputs['method']} request cannot carry a body"}
                     for name in given]
    names = inputs.get("file_data_file_names")
    if names:
        expected, named = set(inputs.get("file_data", {})), set(names)
        if expected != named:
            extra = ", ".join(sorted(named - expected)) or "none"
            missing = ", ".join(sorted(expected - named)) or "none"
            problems.append({"path": "file_data_file_names", "message": "keys must match the file_data "
                             f"keys exactly (extra: {extra}; missing: {missing})"})
    return problems


def file_parts(inputs: Dict[str, Any]) -> Tuple[List[FilePart], List[Dict[str, str]]]:
    """The decoded files of a multipart upload, and the problems of values that do not decode."""
    names = inputs.get("file_data_file_names") or {}
    parts: List[FilePart] = []
    problems: List[Dict[str, str]] = []
    for key, value in inputs.get("file_data", {}).items():
        # A list repeats the field, one part per file, in order.
        values = [(f"file_data/{key}", value)] if isinstance(value, str) else [
            (f"file_data/{key}/{index}", item) for index, item in enumerate(value)]
        filenames = _file_names(key, names.get(key), len(values), isinstance(value, list))
        if filenames is None:
            problems.append({"path": f"file_data_file_names/{key}",
                             "message": f"must be one name or a list of {len(values)} names, one per file"})
            continue
        for (path, content_value), filename in zip(values, filenames):
            try:
                content, declared_type = decode_file_value(content_value)
            except ValueError as problem:
                problems.append({"path": path, "message": str(problem)})
                continue
            content_type = declared_type or mimetypes.guess_type(filename)[0] or "text/plain"
            parts.append(FilePart(key, filename, content, content_type))
    return parts, problems


def _file_names(key: str, given: Any, count: int, is_list: bool) -> Optional[List[str]]:
    """The file name of each part of one field: given one for all, given one each, or derived
    from the field name (numbered for a list); None when a given list has the wrong length."""
    if isinstance(given, str):
        return [given] * count
    if isinstance(given, list):
        return list(given) if len(given) == count else None
    return [f"{key}-{index + 1}" for index in range(count)] if is_list else [key]


def decode_file_value(value: str) -> Tuple[bytes, Optional[str]]:
    """(bytes, media type) of a file_data value: a data URL is decoded, other text sent as UTF-8."""
    found = DATA_URL.match(value)
    if not found:
        return value.encode("utf-8"), None
    params = [param.strip().lower() for param in found["params"].split(";") if param.strip()]
    payload = found["payload"]
    if "base64" in params:
        try:
            content = base64.b64decode(unquote_to_bytes(payload).strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("is a data URL whose base64 content does not decode") from None
    else:
        content = unquote_to_bytes(payload)
    return content, found["mime"]


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    """Send the request `check` accepted (the Runtime runs `check` first, once)."""
    connection = step.connection
    # Built before anything else, and refusing on its own, so that a path escaping the host can
    # never reach the wire even for a caller that skipped `check`.
    url = connection.raw_url(inputs["url"], inputs.get("query_params"))
    method = inputs["method"]
    body = request_body(inputs)
    headers = dict(inputs.get("headers", {}))
    if body.content_type and find_header(headers, "content-type") is None:
        headers["Content-Type"] = body.content_type
    if inputs["debug_request"]:
        log_request(connection, method, url, headers, body)
    response = step.client.request(
        method, url, data=body.data, headers=headers,
        files=multipart_fields(body) if body.is_multipart else None,
        read_timeout=inputs["timeout"] / 1000 if "timeout" in inputs else None,
        retry=retry_policy(inputs), action=step.action.key,
        max_response_bytes=inputs.get("max_response_bytes"))
    return response_result(response, inputs["response_type"], connection.secrets)


def request_body(inputs: Dict[str, Any]) -> Body:
    if "data" in inputs:
        data = inputs["data"]
        if isinstance(data, str):
            return Body(data=data.encode("utf-8"), content_type=TEXT_CONTENT_TYPE)
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return Body(data=encoded, content_type=JSON_CONTENT_TYPE)
    return Body(form=tuple(inputs.get("form_data", {}).items()), files=tuple(file_parts(inputs)[0]))


def multipart_fields(body: Body) -> List[Tuple[str, Tuple[Any, ...]]]:
    """requests' `files` list; plain fields get no file name, which also keeps a form-only upload
    multipart (a `data` dict alone would be sent url-encoded)."""
    fields: List[Tuple[str, Tuple[Any, ...]]] = [(name, (None, value)) for name, value in body.form]
    fields += [(part.field, (part.filename, part.content, part.content_type)) for part in body.files]
    return fields


def find_header(headers: Mapping[str, str], name: str) -> Optional[str]:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def retry_policy(inputs: Dict[str, Any]) -> RetryPolicy:
    """The step's own retry settings; with max_retries 0 (the seed's default) nothing is retried."""
    exponential = inputs["use_exponential_backoff"]
    options: Dict[str, Any] = {} if exponential else {"jitter": 0.0}
    return RetryPolicy(max_retries=inputs["max_retries"], initial_delay=inputs["retry_delay_ms"] / 1000,
                       max_delay=MAX_RETRY_DELAY, exponential=exponential,
                       retry_all_errors=inputs["retry_all_errors"], **options)


def response_result(response: Response, response_type: str, secrets: Tuple[str, ...]) -> Dict[str, Any]:
    content_type = response.headers.get("content-type")
    return {"status": response.status,
            "headers": redact_headers(response.headers, secrets),
            "content_type": content_type,
            "data": response_data(response, response_type, content_type, secrets)}


def response_data(response: Response, response_type: str, content_type: Optional[str],
                  secrets: Tuple[str, ...] = ()) -> Any:
    if response_type == "binary":
        # Hidden before encoding: once in base64, no text redaction can find an echoed key.
        return base64.b64encode(redact_bytes(response.content, secrets)).decode("ascii")
    if response_type == "text":
        return response.content.decode(charset(content_type), errors="replace")
    # HEAD and 204 answers have no body to parse.
    return response.json() if response.content.strip() else None


def charset(content_type: Optional[str]) -> str:
    found = re.search(r"charset=\"?([^\";\s]+)", content_type or "", re.IGNORECASE)
    if found:
        try:
            return codecs.lookup(found.group(1)).name
        except LookupError:
            pass
    return "utf-8"


def log_request(connection: Connection, method: str, url: str, headers: Mapping[str, str], body: Body) -> None:
    """One INFO line describing the request, with every credential hidden."""
    secrets = connection.secrets
    sent = {**connection.default_headers(), **headers, **connection.api_key_headers()}
    logger.info("raw request %s %s headers=%s body=%s", method, redact(url, secrets),
                json.dumps(redact_headers(sent, secrets)), one_line(body_excerpt(body, secrets)))


def body_excerpt(body: Body, secrets: Tuple[str, ...] = ()) -> str:
    """At most ~2 KB describing the body; files are named and sized, never shown.

    Secrets are replaced before clipping, so a cut can never leave part of one behind."""
    if body.is_multipart:
        fields = {redact(name, secrets): _clip(redact(value, secrets), DEBUG_FIELD_LIMIT)
                  for name, value in body.form}
        files = [redact(f"{part.field}={part.filename} ({len(part.content)} bytes, {part.content_type})",
                        secrets) for part in body.files]
        summary = f"multipart form={json.dumps(fields, ensure_ascii=False)} files={files}"
        return _clip(summary, DEBUG_BODY_LIMIT)
    if body.data is None:
        return ""
    # Decode only a bounded prefix: a large string body must not be copied whole into a log line.
    prefix = redact(body.data[:DEBUG_BODY_LIMIT * 4].decode("utf-8", errors="replace"), secrets)
    if len(prefix) <= DEBUG_BODY_LIMIT and len(body.data) <= DEBUG_BODY_LIMIT * 4:
        return prefix
    return f"{prefix[:DEBUG_BODY_LIMIT]}... ({len(body.data)} bytes in all)"


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters escaped, so a log entry stays one line."""
    return CONTROL_CHARACTER.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters in all)"
