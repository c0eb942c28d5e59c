"""The package's one redaction module: text, headers, JSON, and urllib3's log lines."""

import json
import subprocess
import sys

from azure_openai_connector.redaction import REDACTED, credentials, redact, redact_json

KEY = "sk-redaction-test-key-0123456789"


def test_redact_json_hides_secrets_in_strings_and_keys_at_any_depth():
    value = {"a": [f"x {KEY} y", {KEY: KEY}], "n": 1, "flag": None, 2: "two"}
    assert redact_json(value, [KEY]) == {"a": [f"x {REDACTED} y", {REDACTED: REDACTED}], "n": 1,
                                         "flag": None, 2: "two"}


def test_redact_json_hides_a_short_secret_only_where_a_string_is_exactly_it():
    assert redact_json({"word": "abc", "other": "abcdef"}, ["abc"]) == {"word": REDACTED, "other": "abcdef"}


def test_redact_json_ignores_empty_and_missing_secrets():
    value = {"text": "unchanged"}
    assert redact_json(value, ["", None]) == value  # type: ignore[list-item]


def test_redact_hides_the_repr_escaped_form_of_a_secret():
    secret = "key\nwith-a-line-break"
    assert redact(repr(secret), [secret]) == f"'{REDACTED}'"


def test_credentials_include_the_token_without_its_scheme():
    assert credentials(["Bearer tok-123", "plain"]) == ("Bearer tok-123", "tok-123", "plain")


def test_the_urllib3_log_filter_is_installed_by_the_first_client_not_by_import():
    script = """
import json, logging
import azure_openai_connector, azure_openai_connector.http, azure_openai_connector.runtime
from azure_openai_connector.connection import connection_from_values
pool_logger = logging.getLogger("urllib3.connectionpool")
before = [type(f).__name__ for f in pool_logger.filters]
client = azure_openai_connector.http.HttpClient(connection_from_values(
    {"api_key": "sk-filter-test-key", "organization": "res", "is_openai_key": False,
     "api_version": "2024-10-21"}))
azure_openai_connector.http.HttpClient(client.connection)
after = [type(f).__name__ for f in pool_logger.filters]
print(json.dumps([before, after]))
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == [[], ["_UrllibRedactingFilter"]]
