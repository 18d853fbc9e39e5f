"""ops/k8s: every manifest parses and passes the Kubernetes schemas (kubernetes-validate, offline),
the kustomization lists every file, names, labels, selectors and ports agree across objects,
probes run commands and paths editq has, and the environment names settings editq reads."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from editq.settings import Settings
from tests.support import deploy

K8S = Path(__file__).resolve().parents[2] / "ops" / "k8s"
#: Kinds the bundled schemas do not cover (CRDs, kustomize's own file); checked by hand below.
NO_SCHEMA = {"ScaledObject", "Kustomization"}
#: The oldest and the newest Kubernetes the manifests are checked against.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


@functools.cache
def _docs() -> tuple[tuple[str, dict[str, Any]], ...]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), f"{path.name}: an empty or scalar document"
            found.append((path.name, doc))
    return tuple(found)


def _kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _docs() if doc["kind"] == kind}


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = _pod(deployment)["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _selected(selector: dict[str, str]) -> list[dict[str, Any]]:
    """The Deployments whose pods carry every label of `selector`."""
    deployments = _kind("Deployment").values()
    return [d for d in deployments if _matches(selector, d["spec"]["template"]["metadata"]["labels"])]


def _ports(deployment: dict[str, Any]) -> set[str | int]:
    ports = _container(deployment).get("ports", [])
    return {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_passes_the_kubernetes_schemas(version: str) -> None:
    for name, doc in _docs():
        assert {"apiVersion", "kind"} <= set(doc), name
        if doc["kind"] in NO_SCHEMA:
            continue
        assert doc["metadata"]["name"].startswith("editq"), name
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    worker = _kind("Deployment")["editq-worker"]
    broken = {**worker, "spec": {**worker["spec"], "terminationGracePeriod": 240}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files | {"secret.yaml"})
    assert (K8S / "secret.example.yaml").exists(), "secret.yaml is made from secret.example.yaml"


def test_selectors_labels_and_ports_agree() -> None:
    for name, deployment in _kind("Deployment").items():
        assert _selected(deployment["spec"]["selector"]["matchLabels"]) == [deployment], name
    for name, service in _kind("Service").items():
        (target,) = _selected(service["spec"]["selector"])
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in _ports(target), (name, port)
    for name, pdb in _kind("PodDisruptionBudget").items():
        assert [d["metadata"]["name"] for d in _selected(pdb["spec"]["selector"]["matchLabels"])] == [
            "editq-worker"
        ], name
    for name, policy in _kind("NetworkPolicy").items():
        (target,) = _selected(policy["spec"]["podSelector"]["matchLabels"])
        for rule in policy["spec"].get("ingress", []):
            for port in rule["ports"]:
                assert port["port"] in _ports(target), (name, port)
    (scaled,) = _kind("ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] in _kind("Deployment")
    services = _kind("Service")
    for rule in _kind("Ingress")["editq-api"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            names = {p.get("name") for p in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"]["name"] in names, path


def _probes(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in container]


def test_every_long_running_pod_has_probes_that_editq_answers() -> None:
    api_paths, flower_paths = deploy.api_paths(), deploy.flower_paths()
    for name, deployment in _kind("Deployment").items():
        container = _container(deployment)
        assert {"readinessProbe", "livenessProbe"} <= set(container), name
        for probe in _probes(container):
            if "exec" in probe:
                argv = probe["exec"]["command"]
                assert deploy.editq_command(argv) == "probe", (name, argv)
                assert argv[2] == name.removeprefix("editq-"), (name, argv)
            else:
                path = probe["httpGet"]["path"]
                assert path in (flower_paths if name == "editq-flower" else api_paths), (name, path)
                assert probe["httpGet"]["port"] in _ports(deployment), name


def test_workers_outlast_their_calls_and_beat_is_a_singleton() -> None:
    settings = Settings.from_env(_kind("ConfigMap")["editq"]["data"])
    worker = _kind("Deployment")["editq-worker"]
    assert _pod(worker)["terminationGracePeriodSeconds"] > settings.worker_drain_seconds
    beat = _kind("Deployment")["editq-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert _kind("PodDisruptionBudget")["editq-worker"]["spec"]["maxUnavailable"] == 1


def test_the_environment_names_only_settings_editq_reads() -> None:
    config = _kind("ConfigMap")["editq"]["data"]
    secret = _kind("Secret")["editq"]["stringData"]
    assert not deploy.unknown_variables(config)
    assert not deploy.unknown_variables(secret)
    Settings.from_env(config)  # the values parse too
    for name, deployment in _kind("Deployment").items():
        assert not deploy.unknown_variables(e["name"] for e in _container(deployment).get("env", [])), name


def test_keda_counts_the_backlog_once_whatever_the_api_replicas() -> None:
    """Every API replica reports the whole backlog: a plain sum would count it once per replica."""
    (scaled,) = _kind("ScaledObject").values()
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == "sum(max by (tenant, priority) (editq_pending_jobs))"
    metrics_source = (K8S.parents[1] / "api" / "metrics.py").read_text()
    assert '"editq_pending_jobs"' in metrics_source, "the metric KEDA reads is the API's"
    assert int(trigger["metadata"]["threshold"]) > 0
    assert scaled["spec"]["minReplicaCount"] >= 1


def test_metrics_and_flower_are_internal() -> None:
    policies = _kind("NetworkPolicy")
    monitoring = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    labelled = {"matchLabels": {"editq.io/monitoring": "true"}}
    allowed = {
        "monitoring": {"namespaceSelector": monitoring},
        "labelled": {"namespaceSelector": {}, "podSelector": labelled},
    }
    flower = policies["editq-flower"]["spec"]
    assert flower["policyTypes"] == ["Ingress"]
    assert [rule["from"] for rule in flower["ingress"]] == [list(allowed.values())]
    api = policies["editq-api"]["spec"]["ingress"]
    assert all(rule.get("from") for rule in api), "no rule of the API's opens it to every pod"
    for peer in allowed.values():
        assert peer in api[0]["from"]
    for quiet in ("editq-worker", "editq-beat"):
        assert policies[quiet]["spec"] == {
            "podSelector": {"matchLabels": {"app": quiet}},
            "policyTypes": ["Ingress"],
        }
    # the public entry routes the API's paths, never /metrics
    api_paths = deploy.api_paths()
    for rule in _kind("Ingress")["editq-api"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            route, kind = path["path"], path["pathType"]
            if kind == "Exact":
                assert route in api_paths, route
            else:
                assert kind == "Prefix"
                assert any(p.startswith(route) for p in api_paths), route
                assert not "/metrics".startswith(route), route
