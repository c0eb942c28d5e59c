"""multipart/form-data parsing with the stdlib `email` package (the `cgi` module is gone in 3.13)."""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any, Dict, List, Tuple


def is_multipart(content_type: str) -> bool:
    return content_type.lower().startswith("multipart/form-data")


def parse_multipart(content_type: str, body: bytes) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
    """Split a form body into (file parts, plain fields).

    A part is a file when its Content-Disposition names a filename; file parts come back
    as dicts with keys field, filename, content_type and data (bytes).
    """
    # The email parser wants a whole message, so give the body the header it came with.
    envelope = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(envelope)
    files: List[Dict[str, Any]] = []
    form: Dict[str, str] = {}
    if not message.is_multipart():
        return files, form
    for part in message.iter_parts():
        field_name = part.get_param("name", header="content-disposition")
        if not isinstance(field_name, str):
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            form[field_name] = data.decode("utf-8", errors="replace")
            continue
        files.append(
            {
                "field": field_name,
                "filename": filename,
                "content_type": part.get("content-type", "application/octet-stream").split(";")[0].strip(),
                "data": data,
            }
        )
    return files, form
