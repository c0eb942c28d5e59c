"""The package's one redaction module: text, headers, JSON, and urllib3's log lines."""

import json
import subprocess
import sys
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from azure_openai_connector.redaction import REDACTED, credentials, redact, redact_json, redacted_copy

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


# Secrets with the characters that escaping and percent-encoding change, and one short enough to be
# hidden only where a string is exactly it.
SECRETS = ("sk-plain-0123456789", 'k"ey\\with/quotes+=%', "n\u00e9e\nline-\u2603-key", "abc")
_pieces = st.sampled_from(["", "x ", " y", "abc", "ab", "\"", "\\", "\n", "\u00e9", "Bearer "]
                          + list(SECRETS) + [quote(s, safe="") for s in SECRETS]
                          + [json.dumps(s)[1:-1] for s in SECRETS] + [repr(s)[1:-1] for s in SECRETS])
_texts = st.lists(_pieces, max_size=4).map("".join) | st.text(max_size=8)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=_json_values, secrets=st.lists(st.sampled_from(SECRETS), min_size=1, max_size=3))
def test_the_quick_no_secret_answer_never_skips_a_value_the_walk_would_change(value, secrets):
    """redact_json returns a value untouched only after a serialized search finds no secret in any
    form; whatever the value, its answer equals the full walk's."""
    ordered = tuple(sorted(set(secrets), key=len, reverse=True))
    assert redact_json(value, secrets) == redacted_copy(value, ordered)


def test_a_result_without_secrets_is_returned_as_it_is_and_one_with_a_secret_is_copied():
    clean = {"choices": [{"message": {"content": "hello"}}], "usage": {"total_tokens": 3}}
    assert redact_json(clean, ["sk-plain-0123456789"]) is clean
    echoed = {"choices": [{"message": {"content": quote('k"ey\\with/quotes+=%', safe="")}}]}
    assert redact_json(echoed, ['k"ey\\with/quotes+=%']) == {"choices": [{"message": {"content": REDACTED}}]}


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
