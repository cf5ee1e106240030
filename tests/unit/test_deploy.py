"""The deployment files are valid, offline, and keep the properties the engine relies on.

``docker-compose.kafka.yml`` is validated against the Compose specification's JSON schema (the
copy check-jsonschema ships), every manifest under ``deploy/k8s`` against the Kubernetes JSON
schemas kubernetes-validate ships, in strict mode (an unknown field is an error).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from orchestrator.config import KAFKA_ENV_PREFIX, Settings
from orchestrator.log.kafka import consumer_config, producer_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.kafka.yml"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
#: The oldest Kubernetes release the manifests support (deploy/README.md), and the newest known.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
METRICS_PORT = 9464
API_PORT = 8080
#: Variables that are neither the orchestrator's nor its libraries': the Kafka image's own
#: settings and the pod name handed to ``--instance-id``.
FOREIGN_VARIABLE = re.compile(r"KAFKA_\w+|CLUSTER_ID|POD_NAME")
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")

Json = dict[str, Any]


def _load(path: Path) -> Json:
    data: Json = yaml.safe_load(path.read_text())
    return data


@pytest.fixture(scope="module")
def compose() -> Json:
    """The compose file, with YAML anchors and merge keys resolved."""
    return _load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: Json) -> dict[str, Json]:
    """The compose services by name."""
    result: dict[str, Json] = compose["services"]
    return result


@pytest.fixture(scope="module")
def resources() -> list[Json]:
    """Every Kubernetes object of every manifest."""
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _environment(service: Json) -> dict[str, str]:
    """A compose service's environment with ``${VAR:-default}`` replaced by the default."""
    return {
        name: _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))
        for name, value in (service.get("environment") or {}).items()
    }


def _engine_services(services: dict[str, Json]) -> dict[str, Json]:
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("orchestrator")}


def _brokers(services: dict[str, Json]) -> dict[str, Json]:
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}


def _named(resources: list[Json], kind: str) -> dict[str, Json]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def _containers(resources: list[Json]) -> Iterator[tuple[Json, Json]]:
    """(workload, container) for every container of every Deployment and StatefulSet."""
    for workload in resources:
        if workload["kind"] in {"Deployment", "StatefulSet"}:
            for container in workload["spec"]["template"]["spec"]["containers"]:
                yield workload, container


def _config_map(resources: list[Json]) -> dict[str, str]:
    data: dict[str, str] = _named(resources, "ConfigMap")["orchestrator-config"]["data"]
    return data


def _settings_from(environ: dict[str, str]) -> Settings:
    """The Settings a process with exactly ``environ``'s ORCH_* variables reads."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("ORCH_")]:
            patch.delenv(name)
        for name, value in environ.items():
            patch.setenv(name, value)
        return Settings()


# Schemas ---------------------------------------------------------------------------------------


def _compose_validator() -> jsonschema.protocols.Validator:
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(text.read_text())
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def test_compose_file_matches_the_compose_specification(compose: Json) -> None:
    """docker-compose.kafka.yml is valid under the Compose specification's schema."""
    errors = [f"{list(e.path)}: {e.message}" for e in _compose_validator().iter_errors(compose)]
    assert errors == []


def test_compose_schema_rejects_a_misspelt_key(compose: Json) -> None:
    """The compose schema is strict enough to catch a typo in a service."""
    broken = {**compose, "services": {"api": {**compose["services"]["api"], "restrat": "always"}}}
    assert not _compose_validator().is_valid(broken)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_k8s_manifest_matches_the_kubernetes_schemas(path: Path) -> None:
    """Every object of the manifest is valid, strictly, for the oldest and newest Kubernetes."""
    for doc in yaml.safe_load_all(path.read_text()):
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml applies every manifest of deploy/k8s into the namespace it creates."""
    kustomization = _load(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(path.name for path in MANIFESTS)
    namespace = _load(K8S / "namespace.yaml")["metadata"]["name"]
    assert kustomization["namespace"] == namespace


# Kafka -----------------------------------------------------------------------------------------


def test_kafka_is_three_kraft_nodes(services: dict[str, Json]) -> None:
    """Three brokers, each also a KRaft controller, in one quorum of three voters."""
    brokers = _brokers(services)
    assert len(brokers) == 3
    envs = [_environment(service) for service in brokers.values()]
    assert sorted(env["KAFKA_NODE_ID"] for env in envs) == ["1", "2", "3"]
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    for env in envs:
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert sorted(voter.split("@")[1].split(":")[0] for voter in voters) == sorted(brokers)


def test_kafka_replicates_three_times_and_acknowledges_with_two(services: dict[str, Json]) -> None:
    """RF 3 and min ISR 2 for topics and transactions; no automatic topic creation."""
    for service in _brokers(services).values():
        env = _environment(service)
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert service["healthcheck"]["test"]
        assert service["restart"] == "unless-stopped"


def test_topics_are_created_before_the_engine_starts(services: dict[str, Json]) -> None:
    """A one-shot `topics create` runs once every broker is healthy; the engine waits for it."""
    topics = services["topics"]
    assert topics["command"] == ["topics", "create"]
    assert topics["restart"] == "no"
    assert topics["depends_on"] == {
        name: {"condition": "service_healthy"} for name in _brokers(services)
    }
    for name, service in _engine_services(services).items():
        assert _environment(service)["ORCH_REPLICATION_FACTOR"] == "3", name
        if name != "topics":
            condition = service["depends_on"]["topics"]["condition"]
            assert condition == "service_completed_successfully", name


# The engine in compose -------------------------------------------------------------------------


def test_compose_processors_each_have_a_state_volume_and_an_instance_id(
    compose: Json, services: dict[str, Json]
) -> None:
    """Two processors, each with its own named volume on ORCH_STATE_DIR and its own instance id
    (the instance id names the transactional id)."""
    processors = {n: s for n, s in services.items() if s.get("command", [None])[0] == "processor"}
    assert len(processors) == 2
    volumes, instance_ids = set(), set()
    for service in processors.values():
        state_dir = _environment(service)["ORCH_STATE_DIR"]
        [mount] = [v for v in service["volumes"] if v.split(":")[1] == state_dir]
        volumes.add(mount.split(":")[0])
        command = service["command"]
        instance_ids.add(command[command.index("--instance-id") + 1])
    assert len(volumes) == 2
    assert volumes <= set(compose["volumes"])
    assert len(instance_ids) == 2


def test_compose_clients_get_production_kafka_settings(services: dict[str, Json]) -> None:
    """Every engine process produces with acks=all and idempotence and reads read_committed."""
    for name, service in _engine_services(services).items():
        settings = _settings_from(_environment(service))
        _assert_production_clients(settings, name)


def _assert_production_clients(settings: Settings, where: str) -> None:
    producer = producer_config(settings)
    consumer = consumer_config(settings, "group")
    assert producer["acks"] == "all", where
    assert producer["enable.idempotence"] in {True, "true"}, where
    assert consumer["isolation.level"] == "read_committed", where
    assert consumer["enable.auto.commit"] in {False, "false"}, where
    assert settings.replication_factor == 3, where


def test_compose_services_are_health_checked_and_restarted(services: dict[str, Json]) -> None:
    """Long-running engine services probe /readyz on their port and restart unless stopped."""
    for name, service in _engine_services(services).items():
        if name == "topics":
            continue
        port = API_PORT if service["command"][0] == "api" else METRICS_PORT
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"]), name
        assert service["restart"] == "unless-stopped", name
        env = _environment(service)
        if port == METRICS_PORT:
            assert env["ORCH_METRICS_PORT"] == str(METRICS_PORT), name
            assert env["ORCH_METRICS_HOST"] == "0.0.0.0", name  # noqa: S104  the collector scrapes


def test_compose_collector_receives_traces_and_scrapes_every_process(
    services: dict[str, Json],
) -> None:
    """The collector's OTLP/HTTP port is ORCH_OTLP_ENDPOINT's, and it scrapes every /metrics."""
    config = _load(DEPLOY / "otel-collector.yaml")
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    engine = _engine_services(services)
    for service in engine.values():
        assert _environment(service)["ORCH_OTLP_ENDPOINT"] == f"http://otel-collector:{http[-4:]}"
    targets = {
        target
        for job in config["receivers"]["prometheus"]["config"]["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = {
        f"{name}:{API_PORT if s['command'][0] == 'api' else METRICS_PORT}"
        for name, s in engine.items()
        if name != "topics"
    }
    assert targets == expected
    _assert_pipelines_defined(config)


def _assert_pipelines_defined(config: Json) -> None:
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), kind


# The engine on Kubernetes ----------------------------------------------------------------------


def test_k8s_processors_are_a_statefulset_with_a_volume_each(resources: list[Json]) -> None:
    """Two processor pods, named by a headless Service, each with its own claim on the state dir
    and its pod name as instance id."""
    processor = _named(resources, "StatefulSet")["processor"]
    spec = processor["spec"]
    assert spec["replicas"] == 2
    service = _named(resources, "Service")[spec["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    [container] = spec["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == _config_map(resources)["ORCH_STATE_DIR"]
    assert container["args"][:3] == ["processor", "--instance-id", "$(POD_NAME)"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_k8s_workers_and_api_are_deployments(resources: list[Json]) -> None:
    """The built-in workers and the API run as Deployments; a Service fronts the API."""
    deployments = _named(resources, "Deployment")
    args = {
        name: deployment["spec"]["template"]["spec"]["containers"][0]["args"][:2]
        for name, deployment in deployments.items()
    }
    assert args["worker-system"] == ["worker", "workers.system"]
    assert args["worker-llm"] == ["worker", "workers.llm"]
    assert args["api"][0] == "api"
    service = _named(resources, "Service")["api"]
    api_pods = deployments["api"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api_pods.items()


def test_k8s_containers_probe_health_and_declare_resources(resources: list[Json]) -> None:
    """Liveness on /healthz and readiness on /readyz of the port serving them; requests and
    limits on every container."""
    config = _config_map(resources)
    for workload, container in _containers(resources):
        where = workload["metadata"]["name"]
        for key in ("requests", "limits"):
            assert set(container["resources"][key]) == {"cpu", "memory"}, where
        if not container["image"].startswith("orchestrator"):
            continue
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        expected_port = (
            API_PORT if container["args"][0] == "api" else int(config["ORCH_METRICS_PORT"])
        )
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, where
            assert ports[get["port"]] == expected_port, where
    assert config["ORCH_METRICS_HOST"] == "0.0.0.0"  # noqa: S104  probes come from the kubelet


def test_k8s_clients_get_production_kafka_settings(resources: list[Json]) -> None:
    """The ConfigMap's settings keep acks=all, idempotence and read_committed, with RF 3."""
    for workload, container in _containers(resources):
        if container["image"].startswith("orchestrator"):
            literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
            environ = {**_config_map(resources), **literal}
            _assert_production_clients(_settings_from(environ), workload["kind"])


def test_k8s_every_engine_workload_has_a_disruption_budget(resources: list[Json]) -> None:
    """A PodDisruptionBudget selects the pods of every processor, worker and API workload."""
    budgets = [
        budget["spec"]["selector"]["matchLabels"]
        for budget in resources
        if budget["kind"] == "PodDisruptionBudget"
    ]
    for workload, container in _containers(resources):
        if container["image"].startswith("orchestrator"):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert any(b.items() <= labels.items() for b in budgets), workload["metadata"]["name"]


def test_k8s_references_resolve(resources: list[Json]) -> None:
    """Every ConfigMap and Secret key a container refers to exists in the manifests."""
    config_maps = _named(resources, "ConfigMap")
    secrets = {name: s["stringData"] for name, s in _named(resources, "Secret").items()}
    for _, container in _containers(resources):
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in config_maps
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["key"] in secrets[ref["name"]], entry["name"]


# Variables -------------------------------------------------------------------------------------


def _variables_used(services: dict[str, Json], resources: list[Json]) -> set[str]:
    """Every environment variable the deployment files set or interpolate."""
    names = {name for service in services.values() for name in service.get("environment") or {}}
    names |= {match[0] for match in _INTERPOLATION.findall(COMPOSE_FILE.read_text())}
    names |= set(_config_map(resources))
    names |= {key for s in _named(resources, "Secret").values() for key in s["stringData"]}
    names |= {
        e["name"] for _, container in _containers(resources) for e in container.get("env", [])
    }
    return {name for name in names if not FOREIGN_VARIABLE.fullmatch(name)}


def _code_text() -> str:
    sources = [*(ROOT / "orchestrator").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]
    return "\n".join(path.read_text() for path in sources)


def test_every_variable_is_read_by_the_code(
    services: dict[str, Json], resources: list[Json]
) -> None:
    """Each variable is a Settings field, a Kafka pass-through property or named in the code."""
    fields = {f"ORCH_{name.upper()}" for name in Settings.model_fields if name != "kafka"}
    code = _code_text()
    unknown = [
        name
        for name in sorted(_variables_used(services, resources))
        if name not in fields and not name.startswith(KAFKA_ENV_PREFIX) and name not in code
    ]
    assert unknown == []


def test_deploy_readme_documents_every_variable(
    services: dict[str, Json], resources: list[Json]
) -> None:
    """deploy/README.md names every variable the deployment files use."""
    readme = (DEPLOY / "README.md").read_text()
    assert sorted(n for n in _variables_used(services, resources) if n not in readme) == []


def test_dockerfile_is_multi_stage_non_root_with_the_cli_as_entrypoint() -> None:
    """The image builds in one python:3.11-slim stage and runs in another, as a non-root user."""
    text = (DEPLOY / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert len(re.findall(r"^FROM \$\{PYTHON_IMAGE\} AS \w+$", text, re.MULTILINE)) == 2
    [user] = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user.split(":")[0] not in {"root", "0"}
    assert 'ENTRYPOINT ["orchestrator"]' in text
    assert "pip install" in text
    assert "COPY pyproject.toml" in text
