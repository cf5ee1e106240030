"""Fixtures of the unit tests: the deployment files, read once per module."""

from __future__ import annotations

import pytest
import yaml

from tests.unit.deploy_files import COMPOSE_FILE, MANIFESTS, Json, load


@pytest.fixture(scope="module")
def compose() -> Json:
    """The compose file, with YAML anchors and merge keys resolved."""
    return load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: Json) -> dict[str, Json]:
    """The compose services by name."""
    result: dict[str, Json] = compose["services"]
    return result


@pytest.fixture(scope="module")
def resources() -> list[Json]:
    """Every Kubernetes object of every manifest."""
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
