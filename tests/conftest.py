"""Fixtures shared by every tier: one broker per session, fresh topic names per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import structlog

from orchestrator.config import Settings
from orchestrator.log.broker import EmbeddedBroker
from orchestrator.log.kafka import admin_client

TANSU_CLUSTER_ID = "tansu_cluster"


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    """Each test starts from structlog's defaults: a CLI command or a test that configures
    logging (level, format) must not change what the next test's ``capture_logs`` sees."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def broker_bootstrap() -> Iterator[str]:
    """The broker named by ``ORCH_BOOTSTRAP``, or an embedded tansu started once per session."""
    external = os.environ.get("ORCH_BOOTSTRAP")
    if external:
        yield external
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def settings(broker_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test broker, with a topic prefix no other test uses."""
    return Settings(
        bootstrap=broker_bootstrap,
        topic_prefix=f"t{uuid4().hex[:8]}.",
        state_dir=tmp_path / "state",
        partitions=6,
    )


@pytest.fixture(scope="session")
def broker_is_tansu(broker_bootstrap: str) -> bool:
    """Whether the test broker is tansu, whose gaps some tests mark as expected failures."""
    metadata = admin_client(Settings(bootstrap=broker_bootstrap)).list_topics(timeout=10)
    return bool(metadata.cluster_id == TANSU_CLUSTER_ID)
