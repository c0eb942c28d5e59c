"""The emulator's Files and Batch API, spoken to directly over HTTP: jobs move on per fetch, the
input file is validated with Azure's codes, uploads follow each service's expiry spelling."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import requests

from azure_openai_connector.emulator import Emulator

from support import API_KEY

TIMEOUT = 10
OPENAI = {"Authorization": f"Bearer {API_KEY}"}
AZURE = {"api-key": API_KEY}
V1 = "/openai/v1"


def lines(*bodies: Dict[str, Any], url: str = "/v1/chat/completions") -> bytes:
    return "".join(json.dumps({"custom_id": f"{index:06d}", "method": "POST", "url": url, "body": body}) + "\n"
                   for index, body in enumerate(bodies)).encode("utf-8")


def chat(prompt: str, model: str = "gpt-4o-mini") -> Dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}]}


def upload(emulator: Emulator, prefix: str, headers: Dict[str, str], data: bytes,
           form: Dict[str, str] = None) -> requests.Response:
    fields = {"purpose": (None, "batch"), **{name: (None, value) for name, value in (form or {}).items()}}
    return requests.post(f"{emulator.url}{prefix}/files", headers=headers, timeout=TIMEOUT,
                         files={**fields, "file": ("in.jsonl", data, "application/jsonl")})


def create(emulator: Emulator, prefix: str, headers: Dict[str, str], file_id: str, endpoint: str = "/v1/chat/completions",
           **extra: Any) -> requests.Response:
    return requests.post(f"{emulator.url}{prefix}/batches", headers=headers, timeout=TIMEOUT,
                         json={"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", **extra})


def fetch(emulator: Emulator, prefix: str, headers: Dict[str, str], batch_id: str) -> Dict[str, Any]:
    return requests.get(f"{emulator.url}{prefix}/batches/{batch_id}", headers=headers, timeout=TIMEOUT).json()


def test_a_job_moves_on_per_fetch_not_per_second(emulator):
    file_id = upload(emulator, "/v1", OPENAI, lines(*(chat(f"p{i}") for i in range(6)))).json()["id"]
    created = create(emulator, "/v1", OPENAI, file_id, metadata={"emulator_polls": "3"}).json()
    assert (created["status"], created["request_counts"]) == ("validating", {"total": 6, "completed": 0, "failed": 0})
    seen = [fetch(emulator, "/v1", OPENAI, created["id"]) for _ in range(4)]
    assert [(job["status"], job["request_counts"]["completed"]) for job in seen] == [
        ("in_progress", 2), ("finalizing", 4), ("completed", 6), ("completed", 6)]
    assert "error_file_id" not in seen[-1] and seen[-1]["model"] == "gpt-4o-mini"


def test_azure_uploads_are_pending_until_looked_at_and_honour_the_dotted_expiry(emulator):
    expiry = {"expires_after.anchor": "created_at", "expires_after.seconds": "1209600"}
    uploaded = upload(emulator, V1, AZURE, lines(chat("hi")), expiry).json()
    assert uploaded["status"] == "pending" and uploaded["expires_at"] == uploaded["created_at"] + 1_209_600
    looked = requests.get(f"{emulator.url}{V1}/files/{uploaded['id']}", headers=AZURE, timeout=TIMEOUT).json()
    assert looked["status"] == "processed"
    # The JSON part alone is accepted and ignored, as Azure does.
    ignored = upload(emulator, V1, AZURE, lines(chat("hi")), {"expires_after": '{"anchor":"created_at","seconds":1209600}'})
    assert "expires_at" not in ignored.json()
    too_short = upload(emulator, V1, AZURE, lines(chat("hi")), {**expiry, "expires_after.seconds": "3600"})
    assert too_short.status_code == 400 and too_short.json()["error"]["param"] == "expires_after.seconds"


def test_openai_reads_the_bracketed_expiry(emulator):
    uploaded = upload(emulator, "/v1", OPENAI, lines(chat("hi")),
                      {"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}).json()
    assert (uploaded["status"], uploaded["expires_at"] - uploaded["created_at"]) == ("processed", 3600)


def check_failure(emulator: Emulator, data: bytes, code: str, line: Any) -> List[Dict[str, Any]]:
    file_id = upload(emulator, V1, AZURE, data).json()["id"]
    batch_id = create(emulator, V1, AZURE, file_id, endpoint="/chat/completions").json()["id"]
    job = fetch(emulator, V1, AZURE, batch_id)
    assert job["status"] == "failed" and "output_file_id" not in job
    assert [(problem["code"], problem["line"]) for problem in job["errors"]["data"]] == [(code, line)]
    return job["errors"]["data"]


def test_broken_input_files_fail_the_job_with_azure_codes(emulator):
    check_failure(emulator, lines(chat("a"), chat("b", model="other")), "model_mismatch", 2)
    check_failure(emulator, lines(chat("a")) + b"{not json\n", "invalid_json_line", 2)
    check_failure(emulator, lines(chat("a"), url="/v1/embeddings"), "url_mismatch", 1)
    check_failure(emulator, lines(chat("a")) + lines(chat("b")), "duplicate_custom_id", 2)
    [problem] = check_failure(emulator, b"\xef\xbb\xbf" + lines(chat("a")), "model_not_found", None)
    assert "deployment name" in problem["message"]


def test_create_refuses_what_the_service_refuses(emulator):
    text_file = upload(emulator, "/v1", OPENAI, lines(chat("a"))).json()["id"]
    assert create(emulator, "/v1", OPENAI, text_file, endpoint="/chat/completions").json()["error"]["param"] == "endpoint"
    assert create(emulator, "/v1", OPENAI, "file-nope").status_code == 404
    assert create(emulator, "/v1", OPENAI, "file-emulator-text").json()["error"]["code"] == "invalid_file_purpose"
    wrong_window = create(emulator, "/v1", OPENAI, text_file, completion_window="48h")
    assert wrong_window.json()["error"]["param"] == "completion_window"
    no_version = requests.post(f"{emulator.url}/openai/batches", headers=AZURE, timeout=TIMEOUT, json={})
    assert no_version.status_code == 404


def test_list_pages_newest_first_and_cancel_stops_a_job(emulator):
    file_id = upload(emulator, "/v1", OPENAI, lines(chat("a"), chat("b"))).json()["id"]
    first, second = (create(emulator, "/v1", OPENAI, file_id).json()["id"] for _ in range(2))
    page = requests.get(f"{emulator.url}/v1/batches", params={"limit": 1}, headers=OPENAI, timeout=TIMEOUT).json()
    assert ([job["id"] for job in page["data"]], page["has_more"]) == ([second], True)
    rest = requests.get(f"{emulator.url}/v1/batches", params={"after": second}, headers=OPENAI, timeout=TIMEOUT).json()
    assert [job["id"] for job in rest["data"]] == [first, "batch_emulator_example"] and rest["has_more"] is False
    cancelling = requests.post(f"{emulator.url}/v1/batches/{first}/cancel", headers=OPENAI, timeout=TIMEOUT).json()
    assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"] is not None
    cancelled = fetch(emulator, "/v1", OPENAI, first)
    assert cancelled["status"] == "cancelled" and cancelled["output_file_id"] is not None
    errors = requests.get(f"{emulator.url}/v1/files/{cancelled['error_file_id']}/content", headers=OPENAI,
                          timeout=TIMEOUT).text.splitlines()
    assert sorted(json.loads(line)["error"]["code"] for line in errors) == ["batch_cancelled"] * 2


def test_files_can_be_deleted(emulator):
    file_id = upload(emulator, "/v1", OPENAI, lines(chat("a"))).json()["id"]
    deleted = requests.delete(f"{emulator.url}/v1/files/{file_id}", headers=OPENAI, timeout=TIMEOUT)
    assert deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    assert requests.get(f"{emulator.url}/v1/files/{file_id}", headers=OPENAI, timeout=TIMEOUT).status_code == 404
