"""The emulated model catalog: what each model can do and when it retires, per service.

Dates from the vendors' retirement tables as of late 2026 (Azure: the model retirement schedule;
OpenAI: the deprecations page); None where no date was announced. The emulator serves these in
the official models-list shapes, so a picker's lifecycle marking can be tested against them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

# Azure's data-plane capability flags.
AZURE_CAPABILITY_FLAGS = ("fine_tune", "inference", "completion", "chat_completion", "embeddings")
# Only the five flags above are documented, so an image model shows all but `inference` false.
GENERALLY_AVAILABLE = "generally-available"
PREVIEW = "preview"


@dataclass(frozen=True)
class CatalogModel:
    """One model: its ids, capability flags, and retirement dates on each service."""

    model_id: str
    created: int
    capabilities: FrozenSet[str]
    azure_retirement: Optional[str]
    openai_shutdown: Optional[str]
    lifecycle_status: str = GENERALLY_AVAILABLE
    azure_id: Optional[str] = None  # Azure spells a few names differently (gpt-35-turbo-instruct)

    def id_for(self, azure: bool) -> str:
        return (self.azure_id or self.model_id) if azure else self.model_id

    def retirement(self, azure: bool) -> Optional[datetime.date]:
        text = self.azure_retirement if azure else self.openai_shutdown
        return datetime.date.fromisoformat(text) if text else None

    def retired(self, azure: bool, today: datetime.date) -> bool:
        date = self.retirement(azure)
        return date is not None and date <= today


CHAT = frozenset({"inference", "chat_completion"})
COMPLETION = frozenset({"inference", "completion"})
EMBEDDINGS = frozenset({"inference", "embeddings"})
IMAGE = frozenset({"inference"})

CATALOG: Tuple[CatalogModel, ...] = (
    CatalogModel("gpt-5.1", 1762905600, CHAT, "2027-05-15", None),
    CatalogModel("gpt-5.2", 1765152000, CHAT, "2026-12-12", None),
    CatalogModel("gpt-5-mini", 1754524800, CHAT, "2027-02-06", "2026-12-11"),
    CatalogModel("gpt-4.1-mini", 1744588800, CHAT, "2026-10-14", "2027-01-14"),
    CatalogModel("gpt-4o-mini", 1721172741, CHAT, "2026-10-01", "2027-01-14"),
    CatalogModel("gpt-4o", 1715367049, CHAT, "2026-10-01", "2027-01-14"),
    CatalogModel("gpt-image-2", 1776211200, IMAGE, "2027-04-21", None),
    CatalogModel("gpt-image-1.5", 1763510400, IMAGE, "2026-12-16", "2026-12-01"),
    CatalogModel("gpt-image-1-mini", 1759363200, IMAGE, "2027-04-07", "2026-12-01"),
    CatalogModel("gpt-image-1", 1745517030, IMAGE, "2026-10-23", "2026-10-23"),
    CatalogModel("dall-e-3", 1698785189, IMAGE, "2026-03-04", "2026-05-12"),
    CatalogModel("gpt-3.5-turbo-instruct", 1692901427, COMPLETION, None, None,
                 azure_id="gpt-35-turbo-instruct"),
    CatalogModel("text-embedding-3-small", 1705948997, EMBEDDINGS, "2027-04-15", None),
)

# Deployments the emulator knows unless told otherwise: the connector's defaults and one of each
# kind, each named after its model as Azure AI Foundry names new deployments.
DEFAULT_DEPLOYMENTS = {name: name for name in (
    "gpt-5.1", "gpt-5-mini", "gpt-image-2", "gpt-35-turbo-instruct", "gpt-3.5-turbo-instruct",
    "text-embedding-3-small")}


def find(model_id: str) -> Optional[CatalogModel]:
    """The catalog entry a model id names on either service."""
    for model in CATALOG:
        if model_id in (model.model_id, model.azure_id):
            return model
    return None


def today_utc() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()
