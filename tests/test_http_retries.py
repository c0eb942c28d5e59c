"""The retry policy, typed errors and redirect handling, against the scripted emulator."""

from __future__ import annotations

import http.server
import threading
from typing import Iterator, List

import pytest

from azure_openai_connector import errors
from azure_openai_connector.emulator import Fault
from azure_openai_connector.http import (INITIAL_RETRY_DELAY, MAX_RETRY_AFTER, RetryPolicy,
                                         parse_retry_after)

from support import API_KEY

CHAT = "create_chat_completion"


def test_429_with_retry_after_ms_is_retried_once_after_that_wait(emulator, connection, runtime, recorded_sleep):
    emulator.script(Fault.rate_limit(retry_after_ms=50))
    result = runtime.run(CHAT, connection, {})
    assert result["content"]
    assert emulator.request_count == 2
    assert recorded_sleep.waits == [0.05]


def test_retry_after_seconds_is_used_when_there_is_no_ms_header(emulator, azure_connection, runtime, recorded_sleep):
    emulator.script(Fault.rate_limit(retry_after=2))
    runtime.run(CHAT, azure_connection, {})
    assert recorded_sleep.waits == [2.0]


def test_retry_after_as_an_http_date(emulator, azure_connection, runtime, recorded_sleep):
    emulator.script(Fault.rate_limit(retry_after=3, retry_after_date=True))
    runtime.run(CHAT, azure_connection, {})
    [wait] = recorded_sleep.waits
    assert 0 < wait <= 3.0


def test_500_500_200_succeeds_with_exponential_backoff(emulator, connection, runtime, recorded_sleep):
    emulator.script(Fault.status(500), times=2)
    runtime.run(CHAT, connection, {})
    assert emulator.request_count == 3
    first, second = recorded_sleep.waits
    # Jitter only ever shortens a wait, by at most a quarter.
    assert INITIAL_RETRY_DELAY * 0.75 <= first <= INITIAL_RETRY_DELAY
    assert INITIAL_RETRY_DELAY * 2 * 0.75 <= second <= INITIAL_RETRY_DELAY * 2


@pytest.mark.parametrize("fault,error_class", [
    (Fault.insufficient_quota(), errors.QuotaExceededError),
    (Fault.bad_request(message="bad things", param="messages"), errors.BadRequestError),
    (Fault.unauthorized(), errors.AuthenticationError),
    (Fault.not_found(), errors.NotFoundError),
    (Fault.content_filter_prompt(), errors.ContentFilterError),
    (Fault.content_filter_prompt(spec_shape=True), errors.ContentFilterError),
    (Fault.status(503, headers={"x-should-retry": "false"}), errors.ServerError),
])
def test_errors_that_are_never_retried(emulator, connection, runtime, recorded_sleep, fault, error_class):
    emulator.script(fault)
    with pytest.raises(error_class) as caught:
        runtime.run(CHAT, connection, {})
    assert emulator.request_count == 1
    assert recorded_sleep.waits == []
    assert caught.value.status == fault.status_code
    assert caught.value.message
    assert caught.value.request_id


def test_content_filter_keeps_the_filter_results(emulator, azure_connection, runtime):
    emulator.script(Fault.content_filter_prompt())
    with pytest.raises(errors.ContentFilterError) as caught:
        runtime.run(CHAT, azure_connection, {})
    assert caught.value.status == 400
    assert caught.value.code == "content_filter"
    assert caught.value.details["content_filter_results"]["hate"]["filtered"] is True


def test_x_should_retry_true_overrides_a_400(emulator, azure_connection, runtime):
    emulator.script(Fault.status(400, headers={"x-should-retry": "true"}))
    runtime.run(CHAT, azure_connection, {})
    assert emulator.request_count == 2


def test_retry_after_above_the_cap_is_not_retried(emulator, azure_connection, runtime, recorded_sleep):
    emulator.script(Fault.rate_limit(retry_after=MAX_RETRY_AFTER + 1))
    with pytest.raises(errors.RateLimitError) as caught:
        runtime.run(CHAT, azure_connection, {})
    assert emulator.request_count == 1
    assert recorded_sleep.waits == []
    assert caught.value.retry_after == MAX_RETRY_AFTER + 1


@pytest.mark.parametrize("fault", [Fault.drop(), Fault.drop_mid_body()])
def test_dropped_connections_are_retried(emulator, connection, runtime, fault):
    emulator.script(fault)
    assert runtime.run(CHAT, connection, {})["content"]
    assert emulator.request_count == 2


def test_exhausted_retries_raise_the_typed_error_with_everything(emulator, azure_connection, runtime, recorded_sleep):
    emulator.script(Fault.rate_limit(retry_after_ms=10), times=None)
    with pytest.raises(errors.RateLimitError) as caught:
        runtime.run(CHAT, azure_connection, {})
    error = caught.value
    assert emulator.request_count == 3  # the first attempt and two retries
    assert recorded_sleep.waits == [0.01, 0.01]
    assert error.status == 429
    assert error.code == "429"  # Azure's code is the status as a string
    assert "exceeded" in error.message
    assert error.request_id
    assert error.attempts == 3
    assert error.to_dict()["retry_after"] == 0.01


def test_exhausted_retries_on_dropped_connections(emulator, azure_connection, runtime):
    emulator.script(Fault.drop(), times=None)
    with pytest.raises(errors.ApiConnectionError) as caught:
        runtime.run(CHAT, azure_connection, {})
    assert emulator.request_count == 3
    assert caught.value.attempts == 3


def test_malformed_json_is_an_invalid_response(emulator, azure_connection, runtime):
    emulator.script(Fault.malformed())
    with pytest.raises(errors.InvalidResponseError) as caught:
        runtime.run(CHAT, azure_connection, {})
    assert caught.value.code == "invalid_json"
    assert emulator.request_count == 1


def test_read_timeout_is_retried_then_reported(emulator, azure_connection, recorded_sleep):
    from azure_openai_connector.runtime import Runtime

    impatient = Runtime(read_timeout=0.2, sleep=recorded_sleep)
    emulator.script(Fault.slow(2), times=None)
    try:
        with pytest.raises(errors.ApiTimeoutError) as caught:
            impatient.run(CHAT, azure_connection, {})
    finally:
        impatient.close()
    assert caught.value.attempts == 3


def test_connection_refused_is_a_connection_error(azure_connection, runtime):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(errors.ApiConnectionError):
        runtime.run(CHAT, {**azure_connection, "endpoint": f"http://127.0.0.1:{port}"}, {})


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: List[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        type(self).seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def other_host() -> Iterator[str]:
    """Another server on loopback, standing in for the host a redirect points to."""
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}/steal"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_the_key_stays_home(emulator, connection, runtime, other_host, status):
    emulator.script(Fault.redirect(other_host, status=status))
    with pytest.raises(errors.RedirectNotFollowedError) as caught:
        runtime.run(CHAT, connection, {})
    assert caught.value.status == status
    assert _Recorder.seen == []
    assert emulator.request_count == 1
    assert API_KEY not in str(caught.value)


def test_parse_retry_after_prefers_milliseconds():
    def parsed(headers):
        return parse_retry_after(headers, wall_clock=lambda: 0.0)

    assert parsed({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parsed({"retry-after": "1.5"}) == 1.5
    assert parsed({"retry-after": "soon"}) is None
    assert parsed({"retry-after": "-1"}) is None
    assert parsed({}) is None


def test_an_http_date_retry_after_is_measured_against_the_injected_wall_clock():
    headers = {"retry-after": "Fri, 15 Jan 2027 08:00:03 GMT"}
    moment = 1800000000.0  # 2027-01-15 08:00:00 UTC
    assert parse_retry_after(headers, wall_clock=lambda: moment) == 3.0
    assert parse_retry_after(headers, wall_clock=lambda: moment + 10) == 0.0


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, jitter=0)
    assert [policy.backoff(attempt, 0.0) for attempt in range(1, 7)] == [0.5, 1, 2, 4, 8, 8]
    assert RetryPolicy(exponential=False, jitter=0).backoff(5, 0.0) == 0.5
