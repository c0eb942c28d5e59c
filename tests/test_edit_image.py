"""Edit Image against the emulator: every image as a repeated `image[]` part with its bytes and file
name, images from data URLs, plain base64 and downloaded URLs (https only, size bounded, no
redirects, no credentials), routes per service and version, the gpt-image rules."""

from __future__ import annotations

import base64
import ssl
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest
import requests
from jsonschema import Draft7Validator

from azure_openai_connector import actions
from azure_openai_connector.actions.image_sources import PinnedAddressAdapter
from azure_openai_connector.emulator import Emulator
from azure_openai_connector.errors import InputValidationError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

from support import API_KEY, LoopbackServer

ACTION = "edit_image"
FORM = load_manifest().action(ACTION).inputs
SUN_DATA_URL = FORM.default("images")[0]
SUN_PNG = base64.b64decode(SUN_DATA_URL.split(",", 1)[1])
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40


def data_url(content: bytes, media_type: str) -> str:
    return f"data:{media_type};base64," + base64.b64encode(content).decode()


class ImageHost(LoopbackServer):
    """A loopback web server for downloads: /big.png (5 MB), /moved.png (a redirect), /sun.png."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self.seen_headers: list = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.seen_headers.append(dict(self.headers))
                if self.path == "/moved.png":
                    self.send_response(302)
                    self.send_header("Location", "/sun.png")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = SUN_PNG if self.path == "/sun.png" else SUN_PNG[:8] + b"\x00" * 5_000_000
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()  # no Content-Length: the size is found while reading
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler, tls=tls)


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    with ImageHost() as host:
        yield host


def assert_matches_output_schema(result: Dict[str, Any]) -> None:
    Draft7Validator(load_manifest().action(ACTION).output).validate(result)


def test_the_emulator_receives_every_image_part_with_its_bytes_and_file_name(
        runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any], image_host: ImageHost) -> None:
    result = runtime.run(ACTION, openai_connection, {
        "model": "gpt-image-1.5", "prompt": "Put them in one scene",
        "images": [SUN_DATA_URL, data_url(JPEG, "image/jpeg"), base64.b64encode(WEBP).decode(),
                   image_host.url + "/sun.png"],
        "mask": SUN_DATA_URL, "n": 2, "size": "1536x1024", "quality": "high", "background": "opaque",
        "output_format": "jpeg", "output_compression": 80, "input_fidelity": "high"})

    [request] = emulator.requests
    assert request.path == "/v1/images/edits"
    assert [(part["field"], part["filename"], part["content_type"], part["data"]) for part in request.files] == [
        ("image[]", "image-1.png", "image/png", SUN_PNG),
        ("image[]", "image-2.jpg", "image/jpeg", JPEG),
        ("image[]", "image-3.webp", "image/webp", WEBP),
        ("image[]", "sun.png", "image/png", SUN_PNG),
        ("mask", "mask.png", "image/png", SUN_PNG),
    ]
    assert request.form == {"model": "gpt-image-1.5", "prompt": "Put them in one scene", "n": "2",
                            "size": "1536x1024", "quality": "high", "background": "opaque",
                            "output_format": "jpeg", "output_compression": "80", "input_fidelity": "high"}
    # The download carried none of the connection's credentials.
    assert all("Authorization" not in headers and "api-key" not in headers for headers in image_host.seen_headers)
    assert len(result["images"]) == 2
    assert base64.b64decode(result["images"][0]["b64_json"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert result["usage"]["total_tokens"] > 0 and result["output_format"] == "jpeg"
    assert result["errors"] == []
    assert_matches_output_schema(result)


@pytest.mark.parametrize("api_version, path, query", [
    ("v1", "/openai/v1/images/edits", {"api-version": "preview"}),
    ("2025-04-01-preview", "/openai/deployments/my-editor/images/edits", {"api-version": "2025-04-01-preview"}),
    ("2024-10-21", "/openai/deployments/my-editor/images/edits", {"api-version": "2025-04-01-preview"}),
])
def test_azure_routes(runtime: Runtime, emulator: Emulator, azure_connection: Dict[str, Any], api_version: str,
                      path: str, query: Dict[str, str]) -> None:
    runtime.run(ACTION, {**azure_connection, "api_version": api_version}, {"model": "my-editor"})

    [request] = emulator.requests
    assert (request.path, request.query) == (path, query)
    assert ("model" in request.form) is (api_version == "v1")
    assert [part["field"] for part in request.files] == ["image"]  # one image: no brackets


@pytest.mark.parametrize("image, message", [
    ("/moved.png", "could not be downloaded: the host answered HTTP 302 (redirects are not followed)"),
    ("/big.png", "is more than 4,194,304 bytes, the most allowed"),
])
def test_downloads_are_bounded(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any],
                               image_host: ImageHost, image: str, message: str) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, openai_connection, {"mask": image_host.url + image})
    assert raised.value.errors == [{"path": "mask", "message": message}]
    assert emulator.requests == []


@pytest.mark.parametrize("inputs, path, message", [
    ({"images": ["http://example.com/a.png"]}, "images/0", "must use https"),
    ({"images": ["data:image/png;base64,bm90IGFuIGltYWdl"]}, "images/0", "must be a PNG, JPEG or WEBP image"),
    ({"images": [SUN_DATA_URL, "not an image!"]}, "images/1",
     "is neither a data URL, base64 text nor an http(s) URL"),
    ({"mask": data_url(JPEG, "image/jpeg")}, "mask", "must be a PNG image"),
    ({"model": "gpt-image-1", "size": "2048x2048"}, "size", None),
    ({"model": "gpt-image-1-mini", "input_fidelity": "high"}, "input_fidelity", None),
    ({"model": "dall-e-2", "images": [SUN_DATA_URL, SUN_DATA_URL]}, "images", None),
    ({"background": "transparent", "output_format": "jpeg"}, "output_format", None),
    ({"output_compression": 50}, "output_format", None),
    ({"size": "1000x1000"}, "size", "1000x1000: both edges must be multiples of 16 (the gpt-image-2 size rule)"),
])
def test_refused_before_sending(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any],
                                inputs: Dict[str, Any], path: str, message: Any) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, openai_connection, inputs)
    found = {problem["path"]: problem["message"] for problem in raised.value.errors}
    assert path in found, raised.value.errors
    if message is not None:
        assert found[path] == message
    assert emulator.requests == []


def test_webp_on_azure_is_refused_naming_output_format(runtime: Runtime, emulator: Emulator,
                                                       azure_connection: Dict[str, Any]) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, {**azure_connection, "api_version": "v1"}, {"output_format": "webp"})
    assert raised.value.errors == [{"path": "output_format", "message": "Azure OpenAI does not offer webp output; "
                                    "use png or jpeg (the Azure output_format rule)"}]
    assert emulator.requests == []


def test_the_emulator_refuses_an_edit_without_images(emulator: Emulator) -> None:
    import requests

    answer = requests.post(emulator.url + "/v1/images/edits", headers={"Authorization": f"Bearer {API_KEY}"},
                           files=[("prompt", (None, "x"))], timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "image"


# --- the endpoint policy: downloads reach only public addresses, and the one that was checked -----


@pytest.mark.parametrize("url, reason", [
    ("{image_host}/sun.png", "resolves to 127.0.0.1, which is not a public address"),
    ("https://images.invalid/sun.png", "does not resolve to an address"),  # .invalid never resolves
])
def test_under_the_public_policy_an_image_on_a_non_public_host_is_refused_before_any_request(
        emulator: Emulator, openai_connection: Dict[str, Any], image_host: ImageHost, url: str, reason: str) -> None:
    runtime = Runtime()  # the policy of the step, not of the connection (a loopback emulator here)
    try:
        connection = runtime.connection(openai_connection)
        spec = load_manifest().action(ACTION)
        step = actions.Step(action=spec, connection=connection, client=runtime.client(connection),
                            endpoint_policy="public")
        values = spec.inputs.validated({"prompt": "a hat", "images": [SUN_DATA_URL, url.format(image_host=image_host.url)]})
        with pytest.raises(InputValidationError) as caught:
            actions.handler(ACTION).run(step, values)
    finally:
        runtime.close()
    assert caught.value.errors == [{"path": "images/1", "message": f"has a host that {reason}: the endpoint "
                                                                   "policy allows only public addresses"}]
    assert image_host.seen_headers == [] and emulator.requests == []


@pytest.fixture
def tls_image_host(tmp_path: Path) -> Iterator[Tuple[ImageHost, str]]:
    """The image host over https with a certificate for images.example only (a name no resolver
    knows), from a CA made for this test; and that CA's bundle path."""
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("images.example").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    with ImageHost(tls=context) as host:
        yield host, str(bundle)


def _pinned_get(host_name: str, port: int, bundle: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", PinnedAddressAdapter(host_name, "127.0.0.1"))
    try:
        return session.get(f"https://{host_name}:{port}/sun.png", verify=bundle, timeout=10,
                           headers={"Host": f"{host_name}:{port}"})
    finally:
        session.close()


def test_a_pinned_download_goes_to_the_checked_address_and_checks_the_certificate_for_the_host_name(
        tls_image_host: Tuple[ImageHost, str]) -> None:
    host, bundle = tls_image_host
    answer = _pinned_get("images.example", host.port, bundle)  # the name never resolves: only the pin reaches it
    assert answer.status_code == 200 and answer.content == SUN_PNG
    assert host.seen_headers[-1]["Host"] == f"images.example:{host.port}"
    with pytest.raises(requests.exceptions.SSLError):  # the same address under another name: refused
        _pinned_get("other.example", host.port, bundle)
