"""In-memory file storage behind the emulated Files API, seeded with one binary and one text file."""

from __future__ import annotations

import mimetypes
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

BINARY_FILE_ID = "file-emulator-binary"
TEXT_FILE_ID = "file-emulator-text"
# Purposes the spec's file object may carry in an answer.
ANSWERABLE_PURPOSES = (
    "assistants", "assistants_output", "batch", "batch_output", "fine-tune", "fine-tune-results", "vision", "user_data",
)
# Purposes an upload may ask for (the spec's CreateFileRequest enum).
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    @property
    def content_type(self) -> str:
        guessed = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed

    def as_object(self) -> Dict[str, Any]:
        return {
            "id": self.file_id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            # `evals` is accepted on upload but missing from the answer enum; report the
            # closest answerable purpose so the answer still matches the schema.
            "purpose": self.purpose if self.purpose in ANSWERABLE_PURPOSES else "user_data",
            "status": "processed",
        }


class FileStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: Dict[str, StoredFile] = {}
        self._serial = 0
        created = int(time.time())
        self._files[BINARY_FILE_ID] = StoredFile(BINARY_FILE_ID, "blob.bin", "user_data", bytes(range(256)) * 4, created)
        self._files[TEXT_FILE_ID] = StoredFile(
            TEXT_FILE_ID, "hello.txt", "user_data", "hello from the emulator\n".encode("utf-8"), created
        )

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        with self._lock:
            self._serial += 1
            stored = StoredFile(f"file-emu{self._serial:08d}", filename, purpose, data, int(time.time()))
            self._files[stored.file_id] = stored
        return stored

    def get(self, file_id: str) -> Optional[StoredFile]:
        with self._lock:
            return self._files.get(file_id)

    def all(self) -> List[StoredFile]:
        with self._lock:
            return list(self._files.values())
