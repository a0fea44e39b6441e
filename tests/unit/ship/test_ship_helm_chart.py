"""``charts/aimctl``, ``manifests/namespaced`` and the high-availability settings as files (no
helm, no kubectl: test_ship_helm_render.py renders and compares them).

The chart reads copies of files that live in ``manifests/`` (CRDs, the ClusterRole's rules, the
Prometheus, Grafana and tenancy objects); each copy must be byte-equal to its source, and the
failure says the command that re-syncs it. ``manifests/namespaced`` splits the ClusterRole's
rules into a per-namespace Role and a cluster-scoped rest; together they must be exactly the
rules of ``manifests/rbac/role.yaml``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import aimctl

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
CHART = REPO / "charts" / "aimctl"
CLUSTER_SCOPED = {"storageclasses", "tokenreviews", "subjectaccessreviews"}
SELECTOR = {"app.kubernetes.io/name": "aimctl", "app.kubernetes.io/component": "controller-manager"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _tenancy_sources() -> list[str]:
    kustomization = MANIFESTS / "tenancy" / "kustomization.yaml"
    return list(load(kustomization)["resources"]) if kustomization.is_file() else []


# (source under manifests/, copy under charts/aimctl/)
COPIES: list[tuple[str, str]] = [
    *[(f"crds/{p.name}", f"crds/{p.name}") for p in sorted((MANIFESTS / "crds").glob("*_*.yaml"))],
    ("rbac/role.yaml", "files/rbac/role.yaml"),
    ("prometheus/monitor/monitor.yaml", "files/prometheus/monitor.yaml"),
    ("prometheus/rules/aimctl-alerts.yaml", "files/prometheus/aimctl-alerts.yaml"),
    ("grafana/aimctl-dashboard.json", "files/grafana/aimctl-dashboard.json"),
    *[(f"tenancy/{name}", f"files/tenancy/{name}") for name in _tenancy_sources()],
]


@pytest.mark.parametrize(("source", "copy"), COPIES, ids=[c for _, c in COPIES])
def test_chart_copies_equal_their_sources(source: str, copy: str) -> None:
    src, dst = MANIFESTS / source, CHART / copy
    if not src.exists():
        pytest.skip(f"manifests/{source} does not exist (yet)")
    sync = f"cp manifests/{source} charts/aimctl/{copy}"
    assert dst.exists(), f"the chart has no copy of manifests/{source}: {sync}"
    assert dst.read_bytes() == src.read_bytes(), f"charts/aimctl/{copy} is stale: {sync}"


def test_chart_copies_nothing_else() -> None:
    """A file removed from manifests/ goes from the chart too (the chart renders every file
    under files/tenancy and crds/)."""
    copies = {c for _, c in COPIES}
    for sub in ("crds", "files"):
        for path in (CHART / sub).rglob("*"):
            if path.is_file():
                rel = str(path.relative_to(CHART))
                assert rel in copies, f"charts/aimctl/{rel} copies nothing in manifests/"


def _rules(path: Path) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = load(path)["rules"]
    return rules


def test_namespaced_rules_are_exactly_the_cluster_roles_split_by_scope() -> None:
    rules = _rules(MANIFESTS / "rbac" / "role.yaml")
    role = _rules(MANIFESTS / "namespaced" / "manager-role" / "role.yaml")
    rest = _rules(MANIFESTS / "namespaced" / "cluster_role.yaml")
    assert role == [r for r in rules if r["resources"][0] not in CLUSTER_SCOPED]
    assert rest == [r for r in rules if r["resources"][0] in CLUSTER_SCOPED]
    # The chart splits the same way.
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    match = re.search(r'define "aimctl.clusterScoped" -}}\n(.*)\n', helpers)
    assert match is not None
    assert set(match.group(1).split()) == CLUSTER_SCOPED


def test_namespaced_overlay_watches_its_namespaces_only() -> None:
    spec = load(MANIFESTS / "namespaced" / "kustomization.yaml")
    assert spec["resources"][0] == "../default"
    watched = list(spec["resources"][1:])
    assert watched == ["team-a", "team-b"]
    for ns in watched:
        sub = load(MANIFESTS / "namespaced" / ns / "kustomization.yaml")
        assert sub["namespace"] == ns
        assert sub["resources"] == ["../manager-role"]
        assert "namespace" not in spec  # the Roles keep their own namespaces
    (args_patch,) = [p for p in spec["patches"] if "patch" in p]
    assert "--namespace=team-a,team-b" in args_patch["patch"]
    binding = load(MANIFESTS / "namespaced" / "manager-role" / "role_binding.yaml")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "aimctl-manager-role",
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "aimctl-controller-manager",
            "namespace": "aimctl-system",
        }
    ]


def test_default_install_is_highly_available() -> None:
    dep = load(MANIFESTS / "manager" / "manager.yaml")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert dep["spec"]["replicas"] == 2
    assert "--leader-elect" in container["args"]
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == SELECTOR
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    )
    pdb = load(MANIFESTS / "manager" / "pdb.yaml")
    assert (pdb["kind"], pdb["metadata"]["name"]) == (
        "PodDisruptionBudget",
        dep["metadata"]["name"],
    )
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )
    assert "pdb.yaml" in load(MANIFESTS / "manager" / "kustomization.yaml")["resources"]


def test_metrics_are_secure_on_8443_with_the_review_rights() -> None:
    (container,) = load(MANIFESTS / "manager" / "manager.yaml")["spec"]["template"]["spec"][
        "containers"
    ]
    assert "--metrics-bind-address=:8443" in container["args"]
    assert "--metrics-secure" in container["args"]
    assert {"name": "metrics", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    service = load(MANIFESTS / "manager" / "metrics_service.yaml")
    assert service["metadata"]["name"] == "aimctl-controller-manager-metrics"
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 8443, "targetPort": 8443, "protocol": "TCP"}
    ]
    rules = _rules(MANIFESTS / "rbac" / "role.yaml")
    for group, resource in [
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
    ]:
        assert {"apiGroups": [group], "resources": [resource], "verbs": ["create"]} in rules
    reader = load(MANIFESTS / "rbac" / "metrics_reader_role.yaml")
    assert (reader["kind"], reader["metadata"]["name"]) == ("ClusterRole", "aimctl-metrics-reader")
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    # Not bound by default: which account scrapes is the cluster's choice.
    for path in (MANIFESTS / "rbac").glob("*.yaml"):
        doc = load(path)
        assert (doc.get("roleRef") or {}).get("name") != "aimctl-metrics-reader", path


def test_values_and_schema_agree() -> None:
    values = load(CHART / "values.yaml")
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) == set(schema["properties"])
    for name, prop in schema["properties"].items():
        if prop.get("type") == "object" and "properties" in prop:
            assert set(values[name]) == set(prop["properties"]), name
    # Defaults are manifests/default's.
    dep = load(MANIFESTS / "manager" / "manager.yaml")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    image = values["image"]
    assert f"{image['repository']}:{image['tag']}" == container["image"]
    assert image["pullPolicy"] == container["imagePullPolicy"]
    assert values["replicas"] == dep["spec"]["replicas"]
    assert values["resources"] == container["resources"]
    assert values["affinity"] == dep["spec"]["template"]["spec"]["affinity"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (values["logFormat"], values["logLevel"]) == (
        env["AIMCTL_LOG_FORMAT"],
        env["AIMCTL_LOG_LEVEL"],
    )
    assert values["watchNamespaces"] == []
    assert values["tenancy"]["enabled"] is False
    assert values["metrics"]["serviceMonitor"]["enabled"] is False


def test_chart_version_is_aimctls() -> None:
    chart = load(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "aimctl"
    assert chart["version"] == chart["appVersion"] == aimctl.__version__


def test_helm_is_pinned_in_one_place_and_its_module_builds_that_version() -> None:
    script = (REPO / "hack" / "helm.sh").read_text()
    pin = re.search(r"^HELM_VERSION=\$\{HELM_VERSION:-(v\d+\.\d+\.\d+)\}$", script, re.M)
    assert pin is not None
    gomod = (REPO / "hack" / "tools" / "helm" / "go.mod").read_text()
    assert re.search(rf"^\thelm\.sh/helm/v4 {re.escape(pin.group(1))}\b", gomod, re.M)
    assert (REPO / "hack" / "tools" / "helm" / "go.sum").read_text().count("helm.sh/helm/v4 ")
    assert 'source "$ROOT/hack/lib.sh"' in script
