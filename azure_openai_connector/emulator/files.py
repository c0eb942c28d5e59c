"""In-memory file storage behind the emulated Files API, seeded with one binary and one text file.

Batch jobs keep their input, output and error files here too. On Azure routes a batch upload
starts `pending` and is `processed` by the next look at it, as Azure asks clients to poll."""

from __future__ import annotations

import mimetypes
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

BINARY_FILE_ID = "file-emulator-binary"
TEXT_FILE_ID = "file-emulator-text"
# Purposes the spec's file object may carry in an answer.
ANSWERABLE_PURPOSES = (
    "assistants", "assistants_output", "batch", "batch_output", "fine-tune", "fine-tune-results", "vision", "user_data",
)
# Purposes an upload may ask for (the spec's CreateFileRequest enum).
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
PROCESSED = "processed"
PENDING = "pending"


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    status: str = PROCESSED
    expires_at: Optional[int] = None

    @property
    def content_type(self) -> str:
        guessed = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed

    def as_object(self) -> Dict[str, Any]:
        answer: Dict[str, Any] = {
            "id": self.file_id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            # `evals` is accepted on upload but missing from the answer enum; report the
            # closest answerable purpose so the answer still matches the schema.
            "purpose": self.purpose if self.purpose in ANSWERABLE_PURPOSES else "user_data",
            "status": self.status,
        }
        if self.expires_at is not None:
            answer["expires_at"] = self.expires_at
        return answer


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

    def add(self, filename: str, purpose: str, data: bytes, *, status: str = PROCESSED,
            expires_after: Optional[int] = None) -> StoredFile:
        with self._lock:
            self._serial += 1
            created = int(time.time())
            stored = StoredFile(f"file-emu{self._serial:08d}", filename, purpose, data, created, status,
                                None if expires_after is None else created + expires_after)
            self._files[stored.file_id] = stored
        return stored

    def get(self, file_id: str) -> Optional[StoredFile]:
        with self._lock:
            return self._files.get(file_id)

    def look(self, file_id: str) -> Optional[StoredFile]:
        """The file as a client polling it sees it: a pending upload is processed from now on."""
        with self._lock:
            stored = self._files.get(file_id)
            if stored is not None and stored.status == PENDING:
                stored = self._files[file_id] = replace(stored, status=PROCESSED)
            return stored

    def delete(self, file_id: str) -> bool:
        with self._lock:
            return self._files.pop(file_id, None) is not None

    def all(self) -> List[StoredFile]:
        with self._lock:
            return list(self._files.values())


# File expiry on upload. Azure reads the form fields `expires_after.anchor`/`.seconds` (its REST
# docs; a JSON `expires_after` part, as its generated SDKs send it, is accepted and ignored:
# Azure/azure-sdk-for-net#59716); OpenAI's SDK sends `expires_after[anchor]`/`[seconds]`.
EXPIRY_FIELDS = {True: ("expires_after.anchor", "expires_after.seconds"),
                 False: ("expires_after[anchor]", "expires_after[seconds]")}
EXPIRY_RANGE = {True: (1_209_600, 2_592_000), False: (3_600, 2_592_000)}


def upload_expiry(form: Dict[str, str], azure: bool) -> Optional[int]:
    """Seconds until an upload expires as the form asks (None: no expiry), or a 400."""
    from .errors import bad_request

    anchor_field, seconds_field = EXPIRY_FIELDS[azure]
    if anchor_field not in form and seconds_field not in form:
        return None
    if form.get(anchor_field) != "created_at":
        raise bad_request(f"Invalid value for '{anchor_field}': expected 'created_at'.", param=anchor_field,
                          code="invalid_value")
    low, high = EXPIRY_RANGE[azure]
    text = form.get(seconds_field, "")
    if not text.isdigit() or not low <= int(text) <= high:
        raise bad_request(f"Invalid value for '{seconds_field}': expected an integer from {low} to {high}.",
                          param=seconds_field, code="invalid_value")
    return int(text)


def upload_status(purpose: str, azure: bool) -> str:
    """Azure validates a batch upload before it can be used; OpenAI answers it processed."""
    return PENDING if azure and purpose == "batch" else PROCESSED
