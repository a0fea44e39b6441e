"""Acceptance (issue #18): the Helm chart on the local full cluster, with the pinned helm.

- A server-side dry run of everything the chart renders (CRDs, RBAC, the Deployment against the
  namespace's "restricted" Pod Security, the PDB, the tenancy admission policy) is admitted
  without a warning and persists nothing.
- ``helm install`` into a namespace that enforces "restricted": both replicas' pods are admitted
  and become Ready (kwok simulates them: the image never runs), the PodDisruptionBudget exists
  and the disruption controller allows one disruption; ``helm uninstall`` removes everything but
  the CRDs (Helm never deletes what ``crds/`` installed: deleting a CRD deletes every cache).
- The operator, run locally with the installed ServiceAccount's token (what the pod would use),
  converges the guide's Quick Start; upgraded to ``watchNamespaces``, it reconciles in the
  watched namespace and, with the namespaced RBAC, is refused nowhere, while the Quick Start in
  an unwatched namespace is left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aimctl.envtest import ControlPlane
from aimctl.envtest.pytest_plugin import private_control_plane

from .ship_env import (
    CRDS,
    DEPLOYMENT,
    SA,
    SYSTEM_NS,
    Operator,
    apply_sample,
    converged,
    dump,
    fast_ssd,
    get_json,
    kubectl,
    sa_kubeconfig,
    services,
    wait_for,
)
from .test_ship_helm_render import CHART, MANIFESTS, find_helm, helm_template, objects

pytestmark = pytest.mark.full

RELEASE = "aimctl"
SELECTOR = "app.kubernetes.io/name=aimctl,app.kubernetes.io/component=controller-manager"
CONVERGE_TIMEOUT = 60.0
Helm = Callable[..., subprocess.CompletedProcess[str]]  # helm(*args, check=True)


@pytest.fixture(scope="module")
def helm_cluster() -> Iterator[ControlPlane]:
    with private_control_plane(full=True) as cp:
        yield cp


@pytest.fixture(scope="module")
def helm(helm_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """``helm ARGS`` against the private cluster, with helm's own state in a temporary home."""
    binary = find_helm()
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(helm_cluster.kubeconfig),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [str(binary), *args], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        if check:
            assert out.returncode == 0, f"helm {' '.join(args)}: {out.stderr}{out.stdout}"
        return out

    return run


def _restricted_namespace(cp: ControlPlane, name: str) -> None:
    """The operator's namespace as manifests/manager/namespace.yaml makes it, without Helm."""
    (ns,) = objects((MANIFESTS / "manager" / "namespace.yaml").read_text())
    ns["metadata"]["name"] = name
    kubectl(cp, "apply", "--server-side", "-f", "-", input=dump([ns]))


def test_server_side_dry_run_of_the_chart(helm_cluster: ControlPlane, helm: Helm) -> None:
    cp = helm_cluster
    binary = find_helm()
    _restricted_namespace(cp, SYSTEM_NS)
    for ns in ("team-a", "team-b"):
        cp.create_namespace(ns)
    for values in (
        ["tenancy.enabled=true"],
        ["watchNamespaces={team-a,team-b}"],
    ):
        rendered = helm_template(binary, *values)
        count = len(objects(rendered))
        dry = kubectl(cp, "apply", "--server-side", "--dry-run=server", "-f", "-", input=rendered)
        assert "Warning" not in dry.stderr, dry.stderr  # no PodSecurity (or other) warning
        assert dry.stdout.count("serverside-applied (server dry run)") == count, dry.stdout
    assert kubectl(cp, "get", "crd", CRDS[0], check=False).returncode != 0  # nothing persisted
    assert kubectl(cp, "get", "deploy", DEPLOYMENT, "-n", SYSTEM_NS, check=False).returncode


def _pods(cp: ControlPlane) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(cp, "pods", "-n", SYSTEM_NS, "-l", SELECTOR)["items"]
    return items


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def test_helm_install_runs_the_operator_and_uninstall_removes_it(
    helm_cluster: ControlPlane, helm: Helm, tmp_path: Path
) -> None:
    cp = helm_cluster
    _restricted_namespace(cp, SYSTEM_NS)
    began = time.monotonic()
    out = helm("install", RELEASE, str(CHART), "-n", SYSTEM_NS, "--wait", "--timeout", "3m")
    install_seconds = time.monotonic() - began
    assert "Warning" not in out.stderr, out.stderr
    print(f"\nhelm install --wait (2 replicas Ready, kwok): {install_seconds:.1f}s")

    status = json.loads(helm("status", RELEASE, "-n", SYSTEM_NS, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    deployment = get_json(cp, "deployment", DEPLOYMENT, "-n", SYSTEM_NS)
    assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
    pods = _pods(cp)
    assert len(pods) == 2 and all(_ready(p) for p in pods), [p.get("status") for p in pods]
    assert {p["spec"]["serviceAccountName"] for p in pods} == {SA}
    events = get_json(cp, "events", "-n", SYSTEM_NS)["items"]
    assert not [e for e in events if e.get("reason") == "FailedCreate"], events
    # The pods were admitted under "restricted" (else FailedCreate, no pods); a policy change
    # (pinning the version) makes the server re-check the running pods: nothing to warn about.
    labels = get_json(cp, "namespace", SYSTEM_NS)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    recheck = kubectl(
        cp, "label", "--dry-run=server", "--overwrite", "namespace", SYSTEM_NS,
        "pod-security.kubernetes.io/enforce-version=v1.36",
    )  # fmt: skip
    assert "Warning" not in recheck.stderr, recheck.stderr

    pdb = wait_for(
        "the PodDisruptionBudget to allow one disruption",
        lambda: (
            (p := get_json(cp, "pdb", DEPLOYMENT, "-n", SYSTEM_NS)).get("status", {})
            .get("disruptionsAllowed") == 1 and p
        ),
        timeout=60,
    )  # fmt: skip
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["status"]["currentHealthy"] == 2

    # What the pod would run, run here with the ServiceAccount's token: the Quick Start.
    ns = cp.create_namespace(prefix="helm-guide-")
    fast_ssd(cp)
    kubeconfig = sa_kubeconfig(cp, tmp_path / "sa.kubeconfig")
    with Operator(kubeconfig, tmp_path / "operator.log") as op:
        wait_for("leadership", lambda: "Successfully acquired lease" in op.log(), timeout=60)
        apply_sample(cp, "quick-start.yaml", ns)
        op.converge(
            cp,
            ns,
            "Quick Start: kvcache-llama-chat Ready, llama-chat KVCacheReady",
            lambda: converged(cp, ns, ["kvcache-llama-chat"], ["llama-chat"]),
            timeout=CONVERGE_TIMEOUT,
        )
        assert not op.denials(), "\n".join(op.denials())
        kubectl(cp, "delete", "aimservices,aimkvcaches", "--all", "-n", ns, "--timeout=60s")
    cp.delete_namespace(ns)

    helm("uninstall", RELEASE, "-n", SYSTEM_NS, "--wait", "--timeout", "2m")
    for kind, name in [
        ("deployment", DEPLOYMENT),
        ("pdb", DEPLOYMENT),
        ("serviceaccount", SA),
        ("clusterrole", "aimctl-manager-role"),
        ("clusterrole", "aimctl-metrics-reader"),
        ("clusterrolebinding", "aimctl-manager-rolebinding"),
    ]:
        args = [kind, name] if kind.startswith("cluster") else [kind, name, "-n", SYSTEM_NS]
        assert kubectl(cp, "get", *args, check=False).returncode != 0, f"{kind}/{name} left"
    for crd in CRDS:  # kept: Helm does not delete crds/ (that would delete every cache)
        kubectl(cp, "get", "crd", crd)


def test_namespaced_install_reconciles_its_namespaces_and_nowhere_else(
    helm_cluster: ControlPlane, helm: Helm, tmp_path: Path
) -> None:
    cp = helm_cluster
    _restricted_namespace(cp, SYSTEM_NS)
    watched = cp.create_namespace(prefix="helm-watched-")
    other = cp.create_namespace(prefix="helm-other-")
    helm(
        "upgrade", "--install", RELEASE, str(CHART), "-n", SYSTEM_NS,
        "--set", f"watchNamespaces={{{watched}}}", "--wait", "--timeout", "3m",
    )  # fmt: skip
    try:
        (container,) = get_json(cp, "deployment", DEPLOYMENT, "-n", SYSTEM_NS)["spec"]["template"][
            "spec"
        ]["containers"]
        namespace_args = [a for a in container["args"] if a.startswith("--namespace=")]
        assert namespace_args == [f"--namespace={watched}"]
        kubeconfig = sa_kubeconfig(cp, tmp_path / "sa.kubeconfig")

        def can(verb: str, resource: str, ns: str) -> bool:
            out = kubectl(
                cp, f"--kubeconfig={kubeconfig}", "auth", "can-i", verb, resource, "-n", ns,
                check=False,
            )  # fmt: skip
            return out.stdout.strip() == "yes"

        assert can("create", "statefulsets.apps", watched)
        assert not can("create", "statefulsets.apps", other)
        assert not can("list", "aimkvcaches.aim.silogen.ai", other)

        fast_ssd(cp)
        apply_sample(cp, "quick-start.yaml", other)
        # The pod's own namespace flag (the Deployment's args), nothing else.
        with Operator(kubeconfig, tmp_path / "operator.log", *namespace_args) as op:
            wait_for("the operator's /readyz", op.ready, timeout=60)
            apply_sample(cp, "quick-start.yaml", watched)
            op.converge(
                cp,
                watched,
                "Quick Start in the watched namespace",
                lambda: converged(cp, watched, ["kvcache-llama-chat"], ["llama-chat"]),
                timeout=CONVERGE_TIMEOUT,
            )
            assert not op.denials(), "\n".join(op.denials())
            # Nothing happened in the other namespace: no status, no cache created for it.
            svc = services(cp, other)["llama-chat"]
            assert not svc.get("status"), svc.get("status")
            assert not get_json(cp, "aimkvcaches", "-n", other)["items"]
            kubectl(
                cp, "delete", "aimservices,aimkvcaches", "--all", "-n", watched, "--timeout=60s"
            )
    finally:
        helm("uninstall", RELEASE, "-n", SYSTEM_NS, "--wait", "--timeout", "2m", check=False)
    cp.delete_namespace(watched)
    cp.delete_namespace(other)
