"""The emulator's quota mode, on a clock the test steps by hand: Azure's token estimate, the
x-ratelimit headers in each dialect, 429s with the wait until the budget allows the request."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Dict, Iterator

import pytest
import requests

from azure_openai_connector.emulator import Emulator
from azure_openai_connector.emulator.quota import QuotaBook, estimated_tokens

from support import API_KEY

AZURE_CHAT = "/openai/deployments/{}/chat/completions?api-version=2024-10-21"


class HandClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def quota_emulator(clock: HandClock) -> Iterator[Emulator]:
    # 60 requests and 1,200 tokens a minute; Azure's windows hold 10 s of that: 10 requests, 200 tokens.
    with Emulator(api_key=API_KEY, quota={"limited": (60, 1200)}, quota_clock=clock) as emulator:
        yield emulator


def _chat(emulator: Emulator, deployment: str, content: str, **fields: Any) -> requests.Response:
    return requests.post(emulator.url + AZURE_CHAT.format(deployment), headers={"api-key": API_KEY},
                         json={"messages": [{"role": "user", "content": content}], **fields}, timeout=10)


def _rate_headers(response: requests.Response) -> Dict[str, str]:
    return {name: value for name, value in response.headers.items()
            if name.startswith("x-ratelimit-") or name.startswith("retry-after")}


@pytest.mark.parametrize("body,tokens", [
    ({"messages": [{"role": "user", "content": "x" * 40}]}, 10),
    ({"messages": [{"role": "system", "content": "x" * 3}, {"role": "user", "content": "y" * 6}]}, 3),
    ({"messages": [{"role": "user", "content": "x" * 40}], "max_completion_tokens": 50}, 60),
    ({"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 50, "n": 3}, 160),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 8}]}]}, 2),
    ({"prompt": ["abcd", "efgh"], "max_tokens": 5, "best_of": 2}, 12),
    ({"model": "m"}, 0),
])
def test_tokens_are_estimated_at_arrival_as_azure_does(body: Dict[str, Any], tokens: int) -> None:
    assert estimated_tokens(body) == tokens


def test_azure_answers_carry_bare_number_headers_until_the_window_is_spent(quota_emulator: Emulator,
                                                                           clock: HandClock) -> None:
    first = _chat(quota_emulator, "limited", "x" * 40, max_completion_tokens=10)  # 20 tokens
    assert first.status_code == 200
    assert _rate_headers(first) == {
        "x-ratelimit-limit-requests": "60", "x-ratelimit-limit-tokens": "1200",
        "x-ratelimit-remaining-requests": "59", "x-ratelimit-remaining-tokens": "1180",
        "x-ratelimit-reset-requests": "1", "x-ratelimit-reset-tokens": "1",
    }
    for _ in range(8):
        assert _chat(quota_emulator, "limited", "x" * 40, max_completion_tokens=10).status_code == 200
    # 9 x 20 tokens spent of the window's 200: a 10th fits, an 11th does not.
    assert _chat(quota_emulator, "limited", "x" * 40, max_completion_tokens=10).status_code == 200
    refused = _chat(quota_emulator, "limited", "x" * 40, max_completion_tokens=10)
    assert refused.status_code == 429
    assert _rate_headers(refused) == {
        "x-ratelimit-limit-requests": "60", "x-ratelimit-limit-tokens": "1200",
        "x-ratelimit-remaining-requests": "50", "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-requests": "10", "x-ratelimit-reset-tokens": "10",
        # 20 tokens refill at 20 a second: one second, as Azure's retry-after-ms and retry-after.
        "retry-after-ms": "1000", "retry-after": "1",
    }
    error = refused.json()["error"]
    assert error["code"] == "429" and "Please retry after 1 seconds" in error["message"]
    assert (quota_emulator.quota.admitted, quota_emulator.quota.refused) == (10, 1)

    clock.now += 1.0
    again = _chat(quota_emulator, "limited", "x" * 40, max_completion_tokens=10)
    assert again.status_code == 200
    assert again.headers["x-ratelimit-remaining-tokens"] == "1000"


def test_the_request_budget_binds_with_small_requests(quota_emulator: Emulator, clock: HandClock) -> None:
    statuses = [_chat(quota_emulator, "limited", "hi").status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    clock.now += 0.5  # half a request refilled: still refused, with the other half's wait
    refused = _chat(quota_emulator, "limited", "hi")
    assert (refused.status_code, refused.headers["retry-after-ms"]) == (429, "500")
    clock.now += 1.0
    assert _chat(quota_emulator, "limited", "hi").status_code == 200


def test_openai_routes_report_durations(clock: HandClock) -> None:
    with Emulator(api_key=API_KEY, quota=(600, 100000), quota_clock=clock) as emulator:
        for _ in range(5):
            answer = requests.post(emulator.url + "/v1/chat/completions",
                                   headers={"authorization": f"Bearer {API_KEY}"},
                                   json={"model": "gpt-4o-mini", "max_completion_tokens": 990,
                                         "messages": [{"role": "user", "content": "x" * 40}]}, timeout=10)
            assert answer.status_code == 200
    assert _rate_headers(answer) == {
        "x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "100000",
        "x-ratelimit-remaining-requests": "595", "x-ratelimit-remaining-tokens": "95000",
        "x-ratelimit-reset-requests": "500ms", "x-ratelimit-reset-tokens": "3s",
    }


def test_a_deployment_without_a_budget_is_not_metered(quota_emulator: Emulator) -> None:
    answer = _chat(quota_emulator, "unlisted", "hi")
    assert answer.status_code == 200
    assert "x-ratelimit-limit-requests" not in answer.headers
    assert quota_emulator.quota.admitted == 0


def test_time_scale_speeds_the_quota_up_and_reports_real_minutes(clock: HandClock) -> None:
    book = QuotaBook({"d": (600, 60000)}, time_scale=10, clock=clock)
    verdicts = [book.check("d", 100) for _ in range(101)]
    assert [v.admitted for v in verdicts] == [True] * 100 + [False]  # a 1 s window holds 100 requests
    assert verdicts[0].limit_requests == 6000 and verdicts[0].limit_tokens == 600000
    assert verdicts[-1].retry_after == pytest.approx(0.01)  # 100 requests a second refill
    clock.now += 0.01
    assert book.check("d", 100).admitted


def test_the_cli_flag_turns_quota_mode_on() -> None:
    process = subprocess.Popen([sys.executable, "-m", "azure_openai_connector.emulator", "--api-key", API_KEY,
                                "--quota", "60,1200"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = json.loads(process.stdout.readline())["url"]  # type: ignore[union-attr]
        answer = requests.post(url + AZURE_CHAT.format("any"), headers={"api-key": API_KEY},
                               json={"messages": [{"role": "user", "content": "hi"}]}, timeout=10)
        assert answer.headers["x-ratelimit-limit-requests"] == "60"
        assert answer.headers["x-ratelimit-limit-tokens"] == "1200"
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("flag", ["60", "60,0", "a,b"])
def test_the_cli_refuses_a_malformed_quota(flag: str) -> None:
    done = subprocess.run([sys.executable, "-m", "azure_openai_connector.emulator", "--quota", flag],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--quota" in done.stderr
