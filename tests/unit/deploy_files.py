"""The deployment files, read for the tests: compose services, Kubernetes objects, environments."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config import Settings
from orchestrator.log.kafka import consumer_config, producer_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.kafka.yml"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
METRICS_PORT = 9464
API_PORT = 8080
#: Variables that are neither the orchestrator's nor its libraries': the Kafka image's own
#: settings and the pod name handed to ``--instance-id``.
FOREIGN_VARIABLE = re.compile(r"KAFKA_\w+|CLUSTER_ID|POD_NAME")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")

Json = dict[str, Any]


def load(path: Path) -> Json:
    """A YAML file, with anchors and merge keys resolved."""
    data: Json = yaml.safe_load(path.read_text())
    return data


def environment(service: Json) -> dict[str, str]:
    """A compose service's environment with ``${VAR:-default}`` replaced by the default."""
    return {
        name: INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))
        for name, value in (service.get("environment") or {}).items()
    }


def engine_services(services: dict[str, Json]) -> dict[str, Json]:
    """The compose services running the orchestrator's image."""
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("orchestrator")}


def brokers(services: dict[str, Json]) -> dict[str, Json]:
    """The compose services running Kafka."""
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}


def named(resources: list[Json], kind: str) -> dict[str, Json]:
    """The objects of ``kind`` by name."""
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def containers(resources: list[Json]) -> Iterator[tuple[Json, Json]]:
    """(workload, container) for every container of every Deployment and StatefulSet."""
    for workload in resources:
        if workload["kind"] in {"Deployment", "StatefulSet"}:
            for container in workload["spec"]["template"]["spec"]["containers"]:
                yield workload, container


def config_map(resources: list[Json]) -> dict[str, str]:
    """The orchestrator's ConfigMap data."""
    data: dict[str, str] = named(resources, "ConfigMap")["orchestrator-config"]["data"]
    return data


def settings_from(environ: dict[str, str]) -> Settings:
    """The Settings a process with exactly ``environ``'s ORCH_* variables reads."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("ORCH_")]:
            patch.delenv(name)
        for name, value in environ.items():
            patch.setenv(name, value)
        return Settings()


def assert_production_clients(settings: Settings, where: str) -> None:
    """Acks from all replicas, idempotence, read_committed, manual commits and RF 3."""
    producer = producer_config(settings)
    consumer = consumer_config(settings, "group")
    assert producer["acks"] == "all", where
    assert producer["enable.idempotence"] in {True, "true"}, where
    assert consumer["isolation.level"] == "read_committed", where
    assert consumer["enable.auto.commit"] in {False, "false"}, where
    assert settings.replication_factor == 3, where
