"""``manifests/`` as files (rendering and applying them is in tests/integration/ship): every
kustomization names files that exist, every RBAC rule says why it is there, no wildcards, and
the pieces agree with each other (names, image, ports, Pod Security labels)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
KUSTOMIZATIONS = [
    "crds",
    "rbac",
    "manager",
    "default",
    "prometheus",
    "prometheus/monitor",
    "namespaced",
    "namespaced/manager-role",
    "namespaced/team-a",
    "namespaced/team-b",
]
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


def load(path: str) -> Any:
    return yaml.safe_load((MANIFESTS / path).read_text())


@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_kustomization_entries_exist(directory: str) -> None:
    spec = load(f"{directory}/kustomization.yaml")
    for entry in [*spec.get("resources", []), *spec.get("components", [])]:
        target = (MANIFESTS / directory / entry).resolve()
        assert target.exists(), f"{directory}/kustomization.yaml names missing {entry}"


def test_crd_kustomization_lists_every_generated_crd() -> None:
    listed = set(load("crds/kustomization.yaml")["resources"])
    assert listed == {p.name for p in (MANIFESTS / "crds").glob("aim.silogen.ai_*.yaml")}


def test_default_ties_crds_rbac_and_manager_together() -> None:
    spec = load("default/kustomization.yaml")
    assert spec["namespace"] == "aimctl-system"
    assert spec["resources"] == ["../crds", "../rbac", "../manager"]
    assert load("prometheus/kustomization.yaml")["resources"] == ["../default"]
    assert load("prometheus/monitor/kustomization.yaml")["kind"] == "Component"


@pytest.mark.parametrize(
    "path",
    [
        "rbac/role.yaml",
        "rbac/leader_election_role.yaml",
        "namespaced/cluster_role.yaml",
        "namespaced/manager-role/role.yaml",
    ],
)
def test_every_rule_is_explained_and_has_no_wildcard(path: str) -> None:
    lines = (MANIFESTS / path).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("- apiGroups:")]
    role = load(path)
    assert len(starts) == len(role["rules"])
    for i in starts:
        assert lines[i - 1].startswith("#"), f"{path}: rule at line {i + 1} has no comment"
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert set(rule["verbs"]) <= VERBS, rule
        assert len(rule["resources"]) == 1, "one resource per rule, so each can be tested alone"
        assert "resourceNames" not in rule


def test_cluster_role_grants_no_secret_reads_or_writes_and_no_cluster_admin_things() -> None:
    rules = load("rbac/role.yaml")["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    for forbidden in ("nodes", "clusterroles", "roles", "rolebindings", "namespaces"):
        assert forbidden not in resources
    # Secrets: the caches' passwords are created once (POST) and watched; never get, patched,
    # updated or deleted (garbage collection deletes them with their cache).
    secret_rules = [rule for rule in rules if "secrets" in rule["resources"]]
    assert [(r["resources"], sorted(r["verbs"])) for r in secret_rules] == [
        (["secrets"], ["create", "list", "watch"])
    ]


def test_bindings_point_at_the_service_account_the_deployment_uses() -> None:
    sa = load("rbac/service_account.yaml")["metadata"]
    deployment = load("manager/manager.yaml")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["name"]
    for path, role in [
        ("rbac/role_binding.yaml", load("rbac/role.yaml")),
        ("rbac/leader_election_role_binding.yaml", load("rbac/leader_election_role.yaml")),
    ]:
        binding = load(path)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["roleRef"]["kind"] == role["kind"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}
        ]


def test_namespace_enforces_restricted_pod_security() -> None:
    labels = load("manager/namespace.yaml")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_metrics_service_and_monitor_match_the_container_ports() -> None:
    container = load("manager/manager.yaml")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = load("manager/metrics_service.yaml")
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == ports["metrics"] == 8443
    assert any(a == "--metrics-bind-address=:8443" for a in container["args"])
    assert any(a == "--health-probe-bind-address=:8081" for a in container["args"])
    monitor = load("prometheus/monitor/monitor.yaml")
    assert monitor["spec"]["endpoints"][0]["port"] == port["name"]


def test_deployment_image_is_the_one_make_builds() -> None:
    makefile = (REPO / "Makefile").read_text()
    img = re.search(r"^IMG \?= (\S+)$", makefile, re.M)
    assert img is not None
    (image,) = load("manager/kustomization.yaml")["images"]
    assert f"{image['newName']}:{image['newTag']}" == img.group(1)
    container = load("manager/manager.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == img.group(1)
    assert container["imagePullPolicy"] == "IfNotPresent"  # kind-loaded images have no registry
