"""The compose file and the image are valid, offline, and keep what the engine relies on.

``docker-compose.kafka.yml`` is validated against the Compose specification's JSON schema (the
copy check-jsonschema ships). The variables of every deployment file (compose and Kubernetes)
are checked against the code and deploy/README.md here too.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files

import jsonschema

from orchestrator.config import KAFKA_ENV_PREFIX, Settings
from tests.unit.deploy_files import (
    API_PORT,
    COMPOSE_FILE,
    DEPLOY,
    FOREIGN_VARIABLE,
    INTERPOLATION,
    METRICS_PORT,
    ROOT,
    Json,
    assert_production_clients,
    brokers,
    config_map,
    containers,
    engine_services,
    environment,
    load,
    named,
    settings_from,
)

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


# Kafka -----------------------------------------------------------------------------------------


def test_kafka_is_three_kraft_nodes(services: dict[str, Json]) -> None:
    """Three brokers, each also a KRaft controller, in one quorum of three voters."""
    nodes = brokers(services)
    assert len(nodes) == 3
    envs = [environment(service) for service in nodes.values()]
    assert sorted(env["KAFKA_NODE_ID"] for env in envs) == ["1", "2", "3"]
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    for env in envs:
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert sorted(voter.split("@")[1].split(":")[0] for voter in voters) == sorted(nodes)


def test_kafka_replicates_three_times_and_acknowledges_with_two(services: dict[str, Json]) -> None:
    """RF 3 and min ISR 2 for topics and transactions; no automatic topic creation."""
    for service in brokers(services).values():
        env = environment(service)
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
        name: {"condition": "service_healthy"} for name in brokers(services)
    }
    for name, service in engine_services(services).items():
        assert environment(service)["ORCH_REPLICATION_FACTOR"] == "3", name
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
        state_dir = environment(service)["ORCH_STATE_DIR"]
        [mount] = [v for v in service["volumes"] if v.split(":")[1] == state_dir]
        volumes.add(mount.split(":")[0])
        command = service["command"]
        instance_ids.add(command[command.index("--instance-id") + 1])
    assert len(volumes) == 2
    assert volumes <= set(compose["volumes"])
    assert len(instance_ids) == 2


def test_compose_clients_get_production_kafka_settings(services: dict[str, Json]) -> None:
    """Every engine process produces with acks=all and idempotence and reads read_committed."""
    for name, service in engine_services(services).items():
        settings = settings_from(environment(service))
        assert_production_clients(settings, name)


def test_compose_services_are_health_checked_and_restarted(services: dict[str, Json]) -> None:
    """Long-running engine services probe /readyz on their port and restart unless stopped."""
    for name, service in engine_services(services).items():
        if name == "topics":
            continue
        port = API_PORT if service["command"][0] == "api" else METRICS_PORT
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"]), name
        assert service["restart"] == "unless-stopped", name
        env = environment(service)
        if port == METRICS_PORT:
            assert env["ORCH_METRICS_PORT"] == str(METRICS_PORT), name
            assert env["ORCH_METRICS_HOST"] == "0.0.0.0", name  # noqa: S104  the collector scrapes


def test_compose_collector_receives_traces_and_scrapes_every_process(
    services: dict[str, Json],
) -> None:
    """The collector's OTLP/HTTP port is ORCH_OTLP_ENDPOINT's, and it scrapes every /metrics."""
    config = load(DEPLOY / "otel-collector.yaml")
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    engine = engine_services(services)
    for service in engine.values():
        assert environment(service)["ORCH_OTLP_ENDPOINT"] == f"http://otel-collector:{http[-4:]}"
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


# Variables -------------------------------------------------------------------------------------


def _variables_used(services: dict[str, Json], resources: list[Json]) -> set[str]:
    """Every environment variable the deployment files set or interpolate."""
    names = {name for service in services.values() for name in service.get("environment") or {}}
    names |= {match[0] for match in INTERPOLATION.findall(COMPOSE_FILE.read_text())}
    names |= set(config_map(resources))
    names |= {key for s in named(resources, "Secret").values() for key in s["stringData"]}
    names |= {e["name"] for _, container in containers(resources) for e in container.get("env", [])}
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
