"""Chaos tier fixtures: 12-partition settings. The tier runs only when ``-m chaos`` selects it."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from orchestrator.config import Settings
from orchestrator.log.kafka import admin_client
from orchestrator.log.topics import ensure_topics
from orchestrator.telemetry import configure_logging

PARTITIONS = 12


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip chaos tests unless the marker expression asks for them (``make chaos`` does)."""
    if "chaos" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="chaos tier: run with `make chaos` (pytest -m chaos)")
    for item in items:
        if "chaos" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def chaos_settings(broker_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings with 12 partitions and topics no other test uses, topics created."""
    configure_logging("console", "WARNING")
    settings = Settings(
        bootstrap=broker_bootstrap,
        topic_prefix=f"chaos{uuid4().hex[:8]}.",
        state_dir=tmp_path / "state",
        partitions=PARTITIONS,
    )
    ensure_topics(admin_client(settings), settings)
    return settings
