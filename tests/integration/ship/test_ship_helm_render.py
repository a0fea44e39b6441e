"""The Helm chart ``charts/aimctl`` renders what kustomize renders: ``helm template`` of the chart
equals ``kubectl kustomize`` of ``manifests/default`` (default values), ``manifests/namespaced``
(``watchNamespaces``), ``manifests/prometheus`` and ``manifests/grafana`` (``metrics.*``) and
``manifests/tenancy`` (``tenancy.enabled``), with the pinned helm (hack/helm.sh) and kubectl.

How the two are compared (``normalise``): each rendering is parsed into objects keyed by
(kind, namespace, name), so the order of objects and of mapping keys, YAML comments and quoting
do not count; everything else does, lists in order included (args, env, rules). Helm's own
labels (``helm.sh/chart``, ``app.kubernetes.io/managed-by``, ``app.kubernetes.io/instance``),
which the chart adds to every object's ``metadata.labels`` and kustomize cannot know, are
stripped from the chart's side; no other difference is allowed. The chart renders the
Namespace only with ``namespace.create=true`` (``helm install`` keeps its release record in that
namespace, so the namespace must exist before; docs/deployment.md): with default values the
rendering is kustomize's minus the Namespace, with ``namespace.create=true`` all of it.

No cluster: helm and kubectl render offline (the install is test_ship_helm_install.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aimctl.envtest import BinariesNotFound, find_assets
from tests.integration.ship.ship_env import pinned_tool, unavailable

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
CHART = REPO / "charts" / "aimctl"
SYSTEM_NS = "aimctl-system"
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")
Key = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped or unset), name


def find_helm() -> Path:
    """$HELM, else the pinned helm hack/helm.sh builds (~2.5 min cold on two cores)."""
    return pinned_tool("HELM", "helm.sh", "helm", timeout=1800)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return find_helm()


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    try:
        return find_assets().path("kubectl")
    except BinariesNotFound as e:
        unavailable(str(e))
        raise  # unreachable: unavailable skips or fails


def run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert out.returncode == 0, f"{' '.join(map(str, argv))}: {out.stderr}{out.stdout}"
    return out


def helm_template(helm: Path, *values: str, namespace: str = SYSTEM_NS) -> str:
    """``helm template aimctl charts/aimctl -n NAMESPACE --include-crds --set VALUE...``."""
    sets = [a for v in values for a in ("--set", v)]
    return run(
        helm, "template", "aimctl", CHART, "--namespace", namespace, "--include-crds", *sets
    ).stdout


def kustomize(kubectl: Path, directory: Path) -> str:
    return run(kubectl, "kustomize", directory).stdout


def objects(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def normalise(rendered: str, *, strip_helm_labels: bool) -> dict[Key, dict[str, Any]]:
    """Objects by (kind, namespace, name); the chart's side without Helm's labels."""
    out: dict[Key, dict[str, Any]] = {}
    for obj in objects(rendered):
        labels = obj["metadata"].get("labels")
        if strip_helm_labels and labels is not None:
            for label in HELM_LABELS:
                labels.pop(label, None)
        assert key(obj) not in out, f"{key(obj)} rendered twice"
        out[key(obj)] = obj
    return out


def assert_same(chart: dict[Key, dict[str, Any]], kust: dict[Key, dict[str, Any]]) -> None:
    assert sorted(chart) == sorted(kust)
    for k in kust:
        if chart[k] != kust[k]:
            pytest.fail(
                f"{k} differs\n--- kustomize\n{yaml.safe_dump(kust[k])}\n"
                f"--- helm\n{yaml.safe_dump(chart[k])}"
            )


def test_helm_lint_passes_with_default_and_with_every_option(helm_bin: Path) -> None:
    for values in (
        [],
        [
            "watchNamespaces={team-a,team-b}",
            "metrics.serviceMonitor.enabled=true",
            "metrics.prometheusRule.enabled=true",
            "metrics.grafanaDashboard.enabled=true",
            "metrics.certSecret=aimctl-metrics-tls",
            "tenancy.enabled=true",
            "namespace.create=true",
        ],
    ):
        out = run(helm_bin, "lint", "--strict", CHART, *[a for v in values for a in ("--set", v)])
        assert "0 chart(s) failed" in out.stdout, out.stdout


def test_default_values_render_manifests_default(helm_bin: Path, kubectl_bin: Path) -> None:
    kust = normalise(kustomize(kubectl_bin, MANIFESTS / "default"), strip_helm_labels=False)
    with_ns = normalise(helm_template(helm_bin, "namespace.create=true"), strip_helm_labels=True)
    assert_same(with_ns, kust)
    # Default values: the same objects but the Namespace, which must exist before the install.
    default = normalise(helm_template(helm_bin), strip_helm_labels=True)
    assert_same(default, {k: v for k, v in kust.items() if k[0] != "Namespace"})
    # Helm's labels are really there (so stripping them hides nothing else): on every object
    # the chart renders from a template (CRDs are copied verbatim from crds/).
    for obj in objects(helm_template(helm_bin)):
        if obj["kind"] != "CustomResourceDefinition":
            assert set(HELM_LABELS) <= set(obj["metadata"]["labels"]), key(obj)


def test_watch_namespaces_render_manifests_namespaced(helm_bin: Path, kubectl_bin: Path) -> None:
    kust = normalise(kustomize(kubectl_bin, MANIFESTS / "namespaced"), strip_helm_labels=False)
    chart = normalise(
        helm_template(helm_bin, "namespace.create=true", "watchNamespaces={team-a,team-b}"),
        strip_helm_labels=True,
    )
    assert_same(chart, kust)
    for ns in ("team-a", "team-b"):
        assert ("Role", ns, "aimctl-manager-role") in chart
        assert ("RoleBinding", ns, "aimctl-manager-rolebinding") in chart
    cluster_role = chart[("ClusterRole", "", "aimctl-manager-role")]
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "storageclasses",
        "tokenreviews",
        "subjectaccessreviews",
    }


def test_metrics_options_render_manifests_prometheus_and_grafana(
    helm_bin: Path, kubectl_bin: Path
) -> None:
    if not (MANIFESTS / "prometheus" / "rules").is_dir():
        pytest.skip("manifests/prometheus/rules is not there yet")
    kust = normalise(kustomize(kubectl_bin, MANIFESTS / "prometheus"), strip_helm_labels=False)
    chart = normalise(
        helm_template(
            helm_bin,
            "namespace.create=true",
            "metrics.serviceMonitor.enabled=true",
            "metrics.prometheusRule.enabled=true",
        ),
        strip_helm_labels=True,
    )
    assert_same(chart, kust)
    assert ("ServiceMonitor", SYSTEM_NS, "aimctl-controller-manager-metrics") in chart
    assert ("PrometheusRule", SYSTEM_NS, "aimctl-alerts") in chart

    grafana = normalise(kustomize(kubectl_bin, MANIFESTS / "grafana"), strip_helm_labels=False)
    dashboards = {
        k: v
        for k, v in normalise(
            helm_template(helm_bin, "metrics.grafanaDashboard.enabled=true"),
            strip_helm_labels=True,
        ).items()
        if k[0] == "ConfigMap"
    }
    assert_same(dashboards, grafana)


def test_release_namespace_reaches_every_reference(helm_bin: Path) -> None:
    """Installed elsewhere than aimctl-system, nothing still points at aimctl-system (the
    bindings' subjects, the ServiceMonitor's namespaceSelector, the admission policy's params)."""
    rendered = helm_template(
        helm_bin,
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "tenancy.enabled=true",
        "namespace.create=true",
        namespace="ops",
    )
    docs = [d for d in objects(rendered) if d["kind"] != "CustomResourceDefinition"]
    assert SYSTEM_NS not in yaml.safe_dump_all(docs)
    assert ("Namespace", "", "ops") in {key(d) for d in docs}


def test_tenancy_enabled_renders_manifests_tenancy(helm_bin: Path, kubectl_bin: Path) -> None:
    if not (MANIFESTS / "tenancy" / "kustomization.yaml").is_file():
        pytest.skip("manifests/tenancy is not there yet")
    without = normalise(helm_template(helm_bin), strip_helm_labels=True)
    with_tenancy = normalise(
        helm_template(helm_bin, "tenancy.enabled=true"), strip_helm_labels=True
    )
    added = {k: v for k, v in with_tenancy.items() if k not in without}
    assert {k: with_tenancy[k] for k in without} == without  # only additions
    kust = normalise(kustomize(kubectl_bin, MANIFESTS / "tenancy"), strip_helm_labels=False)
    assert_same(added, kust)


def _deployment(rendered: str) -> dict[str, Any]:
    (dep,) = [d for d in objects(rendered) if d["kind"] == "Deployment"]
    return dep


def test_values_reach_the_deployment(helm_bin: Path) -> None:
    dep = _deployment(
        helm_template(
            helm_bin,
            "image.repository=ghcr.io/example/aimctl",
            "image.tag=v0.1.0",
            "image.pullPolicy=Always",
            "replicas=3",
            "logFormat=console",
            "logLevel=debug",
            "resources.requests.cpu=250m",
            "metrics.certSecret=aimctl-metrics-tls",
            "affinity=null",
            "nodeSelector.kubernetes\\.io/os=linux",
        )
    )
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert dep["spec"]["replicas"] == 3
    assert container["image"] == "ghcr.io/example/aimctl:v0.1.0"
    assert container["imagePullPolicy"] == "Always"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["AIMCTL_LOG_FORMAT"], env["AIMCTL_LOG_LEVEL"]) == ("console", "debug")
    assert container["resources"]["requests"]["cpu"] == "250m"
    assert "--metrics-cert-dir=/etc/aimctl/metrics-certs" in container["args"]
    assert {"name": "metrics-certs", "secret": {"secretName": "aimctl-metrics-tls"}} in pod[
        "volumes"
    ]
    assert "affinity" not in pod
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_insecure_metrics_and_single_replica(helm_bin: Path) -> None:
    rendered = helm_template(
        helm_bin, "metrics.secure=false", "replicas=1", "leaderElection.enabled=false"
    )
    (container,) = _deployment(rendered)["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == [
        "--no-leader-elect",
        "--metrics-bind-address=:8080",
        "--no-metrics-secure",
    ]
    (service,) = [d for d in objects(rendered) if d["kind"] == "Service"]
    assert service["spec"]["ports"][0] == {
        "name": "http",
        "port": 8080,
        "targetPort": 8080,
        "protocol": "TCP",
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["leaderElection.enabled=false"], "replicas > 1 needs leaderElection.enabled"),
        (
            ["metrics.secure=false", "metrics.serviceMonitor.enabled=true"],
            "metrics.serviceMonitor needs metrics.secure",
        ),
        (["metrics.secure=false", "metrics.certSecret=x"], "metrics.certSecret needs"),
        (["replicas=0"], "replicas"),
        (["logLevel=verbose"], "logLevel"),
    ],
)
def test_contradictory_values_are_refused(helm_bin: Path, values: list[str], message: str) -> None:
    sets = [a for v in values for a in ("--set", v)]
    out = run(helm_bin, "template", "aimctl", CHART, *sets, check=False)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
