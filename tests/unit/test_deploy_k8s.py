"""The Kubernetes manifests are valid, offline, and keep what the engine relies on.

Every manifest under ``deploy/k8s`` is validated against the Kubernetes JSON schemas
kubernetes-validate ships, in strict mode (an unknown field is an error).
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy_files import (
    API_PORT,
    K8S,
    MANIFESTS,
    Json,
    assert_production_clients,
    config_map,
    containers,
    load,
    named,
    settings_from,
)

#: The oldest Kubernetes release the manifests support (deploy/README.md), and the newest known.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_k8s_manifest_matches_the_kubernetes_schemas(path: Path) -> None:
    """Every object of the manifest is valid, strictly, for the oldest and newest Kubernetes."""
    for doc in yaml.safe_load_all(path.read_text()):
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml applies every manifest of deploy/k8s into the namespace it creates."""
    kustomization = load(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(path.name for path in MANIFESTS)
    namespace = load(K8S / "namespace.yaml")["metadata"]["name"]
    assert kustomization["namespace"] == namespace


# The engine on Kubernetes ----------------------------------------------------------------------


def test_k8s_processors_are_a_statefulset_with_a_volume_each(resources: list[Json]) -> None:
    """Two processor pods, named by a headless Service, each with its own claim on the state dir
    and its pod name as instance id."""
    processor = named(resources, "StatefulSet")["processor"]
    spec = processor["spec"]
    assert spec["replicas"] == 2
    service = named(resources, "Service")[spec["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    [container] = spec["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == config_map(resources)["ORCH_STATE_DIR"]
    assert container["args"][:3] == ["processor", "--instance-id", "$(POD_NAME)"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_k8s_workers_and_api_are_deployments(resources: list[Json]) -> None:
    """The built-in workers and the API run as Deployments; a Service fronts the API."""
    deployments = named(resources, "Deployment")
    args = {
        name: deployment["spec"]["template"]["spec"]["containers"][0]["args"][:2]
        for name, deployment in deployments.items()
    }
    assert args["worker-system"] == ["worker", "workers.system"]
    assert args["worker-llm"] == ["worker", "workers.llm"]
    assert args["api"][0] == "api"
    service = named(resources, "Service")["api"]
    api_pods = deployments["api"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api_pods.items()


def test_k8s_containers_probe_health_and_declare_resources(resources: list[Json]) -> None:
    """Liveness on /healthz and readiness on /readyz of the port serving them; requests and
    limits on every container."""
    config = config_map(resources)
    for workload, container in containers(resources):
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
    for workload, container in containers(resources):
        if container["image"].startswith("orchestrator"):
            literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
            environ = {**config_map(resources), **literal}
            assert_production_clients(settings_from(environ), workload["kind"])


def test_k8s_every_engine_workload_has_a_disruption_budget(resources: list[Json]) -> None:
    """A PodDisruptionBudget selects the pods of every processor, worker and API workload."""
    budgets = [
        budget["spec"]["selector"]["matchLabels"]
        for budget in resources
        if budget["kind"] == "PodDisruptionBudget"
    ]
    for workload, container in containers(resources):
        if container["image"].startswith("orchestrator"):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert any(b.items() <= labels.items() for b in budgets), workload["metadata"]["name"]


def test_k8s_references_resolve(resources: list[Json]) -> None:
    """Every ConfigMap and Secret key a container refers to exists in the manifests."""
    config_maps = named(resources, "ConfigMap")
    secrets = {name: s["stringData"] for name, s in named(resources, "Secret").items()}
    for _, container in containers(resources):
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in config_maps
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["key"] in secrets[ref["name"]], entry["name"]
