"""Images handed to an action as a data URL, plain base64 or an https URL, turned into files.

A URL is fetched without the connection's credentials (it is somebody else's host), over https
only (http on a loopback host, as for the connection's endpoint), with redirects never followed
and the size bounded while reading, so a huge or endless answer cannot fill the worker's memory.
Under the Runtime's "public" endpoint policy (a host whose tenants type the URLs), a URL whose
host resolves to a loopback, private, link-local or otherwise non-public address is refused, and
the download connects to the very address that was checked: a second DNS answer (rebinding)
cannot send it into the worker's own network.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..connection import is_loopback_host, public_address
from ..errors import ApiConnectionError, InputValidationError

MAX_IMAGE_BYTES = 50 * 1024 * 1024  # the gpt-image models' limit per input image
MAX_MASK_BYTES = 4 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 64 * 1024
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+=-]*)*),(?P<payload>.*)\Z", re.DOTALL)
BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}\s*\Z")
FILE_NAME = re.compile(r"^[\w.-]{1,128}\.(png|jpe?g|webp)$", re.IGNORECASE)
# (magic bytes at offset 0, bytes 8-12 or None, media type, file name extension)
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", None, "image/png", "png"),
    (b"\xff\xd8\xff", None, "image/jpeg", "jpg"),
    (b"RIFF", b"WEBP", "image/webp", "webp"),
)


@dataclass(frozen=True)
class ImageFile:
    """One image ready for a multipart part."""

    filename: str
    content: bytes
    content_type: str


def is_url(value: str) -> bool:
    return value[:8].lower().startswith(("https://", "http://"))


def url_problem(value: str) -> Optional[str]:
    """Why a URL may not be fetched (None when it may)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if not host or parts.username is not None or parts.password is not None:
        return "must be an https URL with a host and without a user name or password"
    if parts.scheme.lower() != "https" and not is_loopback_host(host):
        return "must use https"
    return None


def decode_inline(value: str) -> bytes:
    """The bytes of a base64 data URL or of plain base64 text; ValueError when neither."""
    found = DATA_URL.match(value)
    if found:
        if "base64" not in found["params"].lower().split(";"):
            raise ValueError("is a data URL without base64 content")
        value = unquote(found["payload"])
    elif not BASE64_TEXT.match(value[:4096]):
        raise ValueError("is neither a data URL, base64 text nor an http(s) URL")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("has base64 content that does not decode") from None


def image_type(content: bytes) -> Optional[Tuple[str, str]]:
    """(media type, extension) of a PNG, JPEG or WEBP file; None for anything else."""
    for magic, tag, media_type, extension in SIGNATURES:
        if content.startswith(magic) and (tag is None or content[8:12] == tag):
            return media_type, extension
    return None


def inline_problems(value: str, path: str, *, limit: int, png_only: bool = False) -> List[Dict[str, str]]:
    """What is wrong with an image value, found without any network access (URLs: their form)."""
    if is_url(value):
        problem = url_problem(value)
        return [{"path": path, "message": problem}] if problem else []
    try:
        _checked(decode_inline(value), limit=limit, png_only=png_only)
    except ValueError as problem:
        return [{"path": path, "message": str(problem)}]
    return []


def load_image(value: str, path: str, *, stem: str, limit: int, timeouts: Tuple[float, float],
               png_only: bool = False, endpoint_policy: str = "open") -> ImageFile:
    """The image as a file: decoded, or downloaded (under `endpoint_policy`, see above).
    InputValidationError names `path` when the value or the download is unusable, or the policy
    refuses its host; ApiConnectionError when the download's host is unreachable."""
    try:
        if is_url(value):
            content, name = _download(value, path, limit=limit, timeouts=timeouts, endpoint_policy=endpoint_policy)
        else:
            content, name = decode_inline(value), None
        media_type, extension = _checked(content, limit=limit, png_only=png_only)
    except ValueError as problem:
        raise InputValidationError([{"path": path, "message": str(problem)}]) from None
    return ImageFile(name or f"{stem}.{extension}", content, media_type)


def _checked(content: bytes, *, limit: int, png_only: bool) -> Tuple[str, str]:
    if len(content) > limit:
        raise ValueError(f"is {len(content):,} bytes; the most allowed is {limit:,}")
    found = image_type(content)
    if found is None or (png_only and found[0] != "image/png"):
        raise ValueError("must be a PNG image" if png_only else "must be a PNG, JPEG or WEBP image")
    return found


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to `address` whatever the URL's host name resolves to by then, while TLS still
    sends that name (SNI) and checks the certificate against it: the request goes where the policy
    looked, and to the host the URL names."""

    def __init__(self, host: str, address: str) -> None:
        self.host, self.address = host, address
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest, verify: object,
                                             cert: object = None) -> Tuple[Dict[str, object], Dict[str, object]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params.get("host") != self.host:
            raise ValueError(f"this adapter is pinned for {self.host}, not {host_params.get('host')}")
        host_params["host"] = self.address
        pool_kwargs.update(server_hostname=self.host, assert_hostname=self.host)
        return host_params, pool_kwargs


def _download(url: str, path: str, *, limit: int, timeouts: Tuple[float, float],
              endpoint_policy: str = "open") -> Tuple[bytes, Optional[str]]:
    problem = url_problem(url)
    if problem:
        raise ValueError(problem)
    parts = urlsplit(url)
    headers = {"Accept": "image/png, image/jpeg, image/webp"}
    session = requests.Session()
    # No netrc credentials or environment auth for somebody else's host; proxies still apply.
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(url))
    if endpoint_policy != "open":
        host = parts.hostname or ""
        address, refusal = public_address(host)
        if refusal or address is None or parts.scheme.lower() != "https":
            session.close()
            raise ValueError(f"has a host that {refusal or 'is not reached over https'}: "
                             "the endpoint policy allows only public addresses")
        session.mount("https://", PinnedAddressAdapter(host, address))
        headers["Host"] = parts.netloc  # the connection goes to the address; the request names the host
    try:
        with session.get(url, stream=True, allow_redirects=False, timeout=timeouts, headers=headers) as answer:
            if answer.status_code != 200:
                raise ValueError(f"could not be downloaded: the host answered HTTP {answer.status_code}"
                                 + (" (redirects are not followed)" if 300 <= answer.status_code < 400 else ""))
            declared = answer.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ValueError(f"is {int(declared):,} bytes; the most allowed is {limit:,}")
            received = bytearray()
            for chunk in answer.iter_content(DOWNLOAD_CHUNK_BYTES):
                received += chunk
                if len(received) > limit:
                    raise ValueError(f"is more than {limit:,} bytes, the most allowed")
    except requests.RequestException as failure:
        raise ApiConnectionError(f"{path}: the image could not be downloaded ({type(failure).__name__})") from None
    finally:
        session.close()
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return bytes(received), name if FILE_NAME.match(name) else None
