"""Just the answer of a step's result, for `run --output content`: its text, or its images as files.

Chat: ``content``; summarize: ``summary``; multiple: one answer per line (in prompt order, an
empty line for a prompt that failed, line breaks inside an answer written as ``\\n``); raw
request: the body (text as is, JSON compact); images: the image files written to a folder, one
path per line.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping

IMAGE_DOWNLOAD_TIMEOUT_SECONDS = 60
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF8", "gif"))


def answer_text(result: Mapping[str, Any]) -> str:
    """The text a person wants from a (non-image) result, ending with a newline."""
    if isinstance(result.get("results"), list):
        lines = [(item.get("content") or "").replace("\r\n", "\n").replace("\n", "\\n")
                 for item in result["results"]]
        return "".join(line + "\n" for line in lines)
    for key in ("content", "summary"):
        if key in result:
            return f"{result[key] or ''}\n"
    if "data" in result and "status" in result:
        data = result["data"]
        return (data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)) + "\n"
    return json.dumps(result, ensure_ascii=False) + "\n"


def write_images(result: Mapping[str, Any], folder: Path) -> List[Path]:
    """Write every image of a create_image result into `folder`; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    for index, image in enumerate(result.get("images") or []):
        content = _image_bytes(image)
        name = f"image-{result.get('created', 0)}-{index}.{_extension(content)}"
        path = folder / name
        path.write_bytes(content)
        written.append(path)
    return written


def _image_bytes(image: Dict[str, Any]) -> bytes:
    if image.get("b64_json"):
        return base64.b64decode(image["b64_json"])
    import requests

    answer = requests.get(image["url"], timeout=IMAGE_DOWNLOAD_TIMEOUT_SECONDS)
    answer.raise_for_status()
    return answer.content


def _extension(content: bytes) -> str:
    for signature, extension in _IMAGE_SIGNATURES:
        if content.startswith(signature):
            return extension
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "webp"
    return "bin"
