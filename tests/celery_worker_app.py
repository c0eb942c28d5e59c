"""The Celery app of the Celery tests, as a host would build it: the connector's tasks registered on
it, and (in the worker only) a plugin resolving "conn:NAME" references to the emulator, so the key
lives in the worker's environment and never in a task argument.

The worker runs `celery -A celery_worker_app worker` with AOC_CELERY_REDIS_URL, AOC_CELERY_EMULATOR_URL
and AOC_CELERY_API_KEY set; the tests build the same app with `build_app(redis_url)`.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

from celery import Celery

import azure_openai_connector
from azure_openai_connector.celery import register_tasks

# Small engine retry delays keep the retry tests short; the retry counts are real.
TEST_MAX_RETRIES = 1
TEST_FIRST_RETRY_DELAY = 0.05


def build_app(redis_url: str) -> Celery:
    """The app both sides use: Redis as broker and result backend, JSON only."""
    app = Celery("aoc_celery_tests", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,  # a 500-prompt step is long: let the idle worker take the next
        result_expires=3600,
    )
    register_tasks(app, max_retries=TEST_MAX_RETRIES, first_retry_delay=TEST_FIRST_RETRY_DELAY)
    return app


class EmulatorConnections:
    """Resolves the references the tests send to connections to the test's emulator."""

    def __init__(self, emulator_url: str, api_key: str) -> None:
        self._connections: Dict[str, Dict[str, Any]] = {
            "azure": {"api_key": api_key, "organization": "contoso", "endpoint": emulator_url},
            "openai": {"api_key": api_key, "is_openai_key": True, "endpoint": emulator_url + "/v1"},
        }

    @azure_openai_connector.hookimpl
    def resolve_connection(self, name: str) -> Optional[Mapping[str, Any]]:
        return self._connections.get(name)


if "AOC_CELERY_API_KEY" in os.environ:  # the worker
    from azure_openai_connector.extensions import extension_manager

    extension_manager().register(
        EmulatorConnections(os.environ["AOC_CELERY_EMULATOR_URL"], os.environ.pop("AOC_CELERY_API_KEY")),
        name="celery-test-connections")

app = build_app(os.environ["AOC_CELERY_REDIS_URL"]) if "AOC_CELERY_REDIS_URL" in os.environ else None
