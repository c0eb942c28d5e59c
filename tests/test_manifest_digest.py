"""The packaged manifest's proof of validity: the suite checks the packaged bytes fully and holds the
digest recorded in the package to them, so a start with those bytes may skip the check; other bytes,
and any manifest a user loads from a file, are always checked fully."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from azure_openai_connector.manifest import (
    VALIDATED_DIGEST_FILE,
    ManifestError,
    load_packaged,
    manifest_digest,
    parse_manifest,
    source_sha256,
)

DATA = resources.files("azure_openai_connector") / "data"


def _packaged(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_the_recorded_digest_is_of_the_packaged_bytes_that_pass_the_full_check() -> None:
    text, meta = _packaged("connector.yaml"), _packaged("manifest.schema.json")
    parse_manifest(text, source="connector.yaml", meta_schema=json.loads(meta))  # raises if broken
    expected = manifest_digest(text, meta)
    recorded = _packaged(VALIDATED_DIGEST_FILE).strip()
    assert recorded == expected, (
        f"connector.yaml or its schema changed: once they pass this check, write {expected} "
        f"into azure_openai_connector/data/{VALIDATED_DIGEST_FILE}")


def test_bytes_other_than_the_proven_ones_are_checked_fully(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_CONNECTOR_CACHE_DIR", str(tmp_path))
    text, meta = _packaged("connector.yaml"), _packaged("manifest.schema.json")
    recorded = _packaged(VALIDATED_DIGEST_FILE).strip()
    broken = text.replace("maximum: 64\n          default: 8", "maximum: 64\n          default: 65", 1)
    assert broken != text
    with pytest.raises(ManifestError, match=r"max_concurrency\.default: 65 is greater than the maximum of 64"):
        load_packaged(broken, meta, recorded)
    assert "create_chat_completion" in load_packaged(text, meta, recorded).actions


def test_a_manifest_loaded_from_a_file_is_always_checked_fully(tmp_path: Path) -> None:
    copy = tmp_path / "connector.yaml"
    copy.write_text(_packaged("connector.yaml"), encoding="utf-8")
    code = ("import sys\nfrom azure_openai_connector.manifest import load_manifest_file\n"
            f"load_manifest_file({str(copy)!r})\nprint('jsonschema' in sys.modules)")
    env = dict(os.environ, AZURE_OPENAI_CONNECTOR_CACHE_DIR="")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60, check=True)
    assert done.stdout.strip() == "True"


def _compiled(document: dict, made_from: str) -> str:
    return json.dumps({"source_sha256": source_sha256(made_from), "manifest": document})


def test_a_compiled_copy_is_read_only_for_the_text_it_was_made_from() -> None:
    """setup.py writes the build's parse of the YAML beside it; the package reads that copy instead
    of parsing YAML only while the copy's recorded hash is the YAML's own."""
    text, meta = _packaged("connector.yaml"), _packaged("manifest.schema.json")
    recorded = _packaged(VALIDATED_DIGEST_FILE).strip()
    parsed = load_packaged(text, meta, recorded).raw
    marked = json.loads(json.dumps(parsed))
    marked["connector"]["name"] = "read from the compiled copy"

    assert load_packaged(text, meta, recorded, _compiled(marked, text)).raw == marked
    for stale in (_compiled(marked, text + "\n# edited after the build\n"), "{not json", json.dumps([1]),
                  json.dumps({"source_sha256": source_sha256(text), "manifest": "not a mapping"})):
        assert load_packaged(text, meta, recorded, stale).raw == parsed
