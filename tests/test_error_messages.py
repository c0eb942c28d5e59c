"""Refusals read as a person would write them: no stutter, and the subject says what was wrong."""

from __future__ import annotations

import pytest

from azure_openai_connector import InputValidationError, run_action


def refusal(action, connection, inputs) -> str:
    with pytest.raises(InputValidationError) as raised:
        run_action(action, connection, inputs)
    return str(raised.value)


def test_an_unknown_action_does_not_stutter():
    message = refusal("create_chat_complet", {"api_key": "k", "organization": "x"}, {})
    assert message.startswith("Invalid action: unknown action 'create_chat_complet'; known actions: ")


def test_a_connection_problem_is_called_a_connection_problem():
    message = refusal("create_chat_completion", {"api_key": "k"}, {})
    assert message.startswith("Invalid connection: connection/organization: is required for Azure OpenAI")


def test_problems_on_both_sides_name_both():
    message = refusal("create_chat_completion", {"api_key": "k"}, {"temperature": 9})
    assert message.startswith("Invalid connection and inputs: connection/organization: ")
    assert message.endswith("; temperature: 9 is greater than the maximum of 2")


def test_input_problems_stay_input_problems():
    message = refusal("create_chat_completion", {"api_key": "k", "organization": "x"}, {"temperature": 9})
    assert message == "Invalid inputs: temperature: 9 is greater than the maximum of 2"
