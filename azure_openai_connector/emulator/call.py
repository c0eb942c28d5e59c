"""The context one handler gets: the recorded request plus what the emulated resource knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional

from . import validation
from .files import FileStore
from .recording import RecordedRequest
from .reply import Reply


@dataclass
class Call:
    """Everything a handler needs to answer one request."""

    request: RecordedRequest
    json_ok: bool
    dialect: str
    azure_dated: bool
    params: Dict[str, str]
    serial: int
    base_url: str
    files: FileStore
    #: The resource's batch jobs (emulator.batches.BatchStore).
    batches: Any = None
    #: Known deployment (or model) names and the model each serves; None: any name is accepted.
    deployments: Optional[Mapping[str, str]] = None
    #: The resource's stored Responses (a ResponseStore); None where no route needs them.
    responses: Any = None
    #: Deployment (or model) name -> the model behind it, for names that do not say (prod-chat),
    #: while every other name stays accepted.
    deployment_models: Mapping[str, str] = field(default_factory=dict)

    def model_behind(self, name: str) -> str:
        """The model a deployment name serves (the name itself when it is not configured)."""
        return self.deployment_models.get(name) or (self.deployments or {}).get(name, name)

    @property
    def api_version(self) -> Optional[str]:
        return self.request.query.get("api-version")

    def body(self) -> Dict[str, Any]:
        return validation.json_object(self.json_ok, self.request.json)


Handler = Callable[[Call], Reply]
