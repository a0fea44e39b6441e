"""Acceptance (issue #7): ``manifests/`` renders with the pinned kubectl, deploys onto the local
full cluster, passes the "restricted" Pod Security Standard, and the operator running with the
ServiceAccount's own token converges the guide's samples.

The Deployment's pod is a kwok fake: it never runs the image. The operator therefore runs as a
local process, but with exactly the credentials the pod would have (a token of the
ServiceAccount, so the ClusterRole and the leader-election Role are what authorizes it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aimctl.envtest import ControlPlane

from .ship_env import (
    CLUSTER_ROLE,
    CRDS,
    DEPLOYMENT,
    LEADER_ROLE,
    MANIFESTS,
    SA,
    SYSTEM_NS,
    Operator,
    apply_sample,
    caches,
    converged,
    deploy,
    dump,
    fast_ssd,
    get_json,
    kubectl,
    render,
    sa_kubeconfig,
    wait_for,
)

pytestmark = pytest.mark.full

CONVERGE_TIMEOUT = 60.0


def _by_kind(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_manifests_render_with_the_pinned_kubectl(ship_cluster: ControlPlane) -> None:
    docs = _by_kind(render(ship_cluster, MANIFESTS / "default"))
    assert set(docs) == {
        ("Namespace", SYSTEM_NS),
        ("CustomResourceDefinition", CRDS[0]),
        ("CustomResourceDefinition", CRDS[1]),
        ("ServiceAccount", SA),
        ("ClusterRole", CLUSTER_ROLE),
        ("ClusterRoleBinding", "aimctl-manager-rolebinding"),
        ("Role", LEADER_ROLE),
        ("RoleBinding", "aimctl-leader-election-rolebinding"),
        ("Deployment", DEPLOYMENT),
        ("Service", "aimctl-controller-manager-metrics"),
        ("PodDisruptionBudget", DEPLOYMENT),
        ("ClusterRole", "aimctl-metrics-reader"),
    }
    for (kind, _), doc in docs.items():
        if kind not in (
            "Namespace",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
        ):
            assert doc["metadata"]["namespace"] == SYSTEM_NS, doc["metadata"]
    for (kind, _), role in docs.items():
        for rule in role.get("rules", []) if kind in ("ClusterRole", "Role") else []:
            for field in ("apiGroups", "resources", "nonResourceURLs", "verbs"):
                assert "*" not in rule.get(field, []), f"wildcard in {kind} rule {rule}"
    assert docs[("Role", LEADER_ROLE)]["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    subjects = [{"kind": "ServiceAccount", "name": SA, "namespace": SYSTEM_NS}]
    assert docs[("ClusterRoleBinding", "aimctl-manager-rolebinding")]["subjects"] == subjects
    assert docs[("RoleBinding", "aimctl-leader-election-rolebinding")]["subjects"] == subjects

    pod = docs[("Deployment", DEPLOYMENT)]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == SA
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "--leader-elect" in container["args"]
    assert {"name": "AIMCTL_LOG_FORMAT", "value": "json"} in container["env"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8443, "probes": 8081}
    assert "--metrics-secure" in container["args"]
    # High availability: two replicas (one leads), spread over nodes, one kept through drains.
    assert docs[("Deployment", DEPLOYMENT)]["spec"]["replicas"] == 2
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert docs[("PodDisruptionBudget", DEPLOYMENT)]["spec"]["minAvailable"] == 1
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]

    with_monitor = _by_kind(render(ship_cluster, MANIFESTS / "prometheus"))
    assert set(with_monitor) == {
        *docs,
        ("ServiceMonitor", "aimctl-controller-manager-metrics"),
        ("PrometheusRule", "aimctl-alerts"),
    }
    monitor = with_monitor[("ServiceMonitor", "aimctl-controller-manager-metrics")]
    service = docs[("Service", "aimctl-controller-manager-metrics")]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_deploy_server_dry_run_then_apply(ship_cluster: ControlPlane) -> None:
    cp = ship_cluster
    default = str(MANIFESTS / "default")
    # A server dry run cannot create the namespace its namespaced objects go to: on a fresh
    # cluster those fail with NotFound, and only those.
    fresh = kubectl(cp, "apply", "--server-side", "--dry-run=server", "-k", default, check=False)
    refused = [line for line in fresh.stderr.splitlines() if line.strip()]
    assert refused, fresh.stdout
    assert all(f'namespaces "{SYSTEM_NS}" not found' in line for line in refused), fresh.stderr
    # With the namespace there, the server validates and admits every object (RBAC, the
    # Deployment against Pod Security, the CRDs' schemas) without persisting any.
    namespace = next(d for d in render(cp, MANIFESTS / "default") if d["kind"] == "Namespace")
    kubectl(cp, "apply", "--server-side", "-f", "-", input=dump([namespace]))
    dry = kubectl(cp, "apply", "--server-side", "--dry-run=server", "-k", default)
    assert "Warning" not in dry.stderr, dry.stderr
    assert dry.stdout.count("serverside-applied (server dry run)") == 12, dry.stdout
    assert kubectl(cp, "get", "crd", CRDS[0], check=False).returncode != 0  # nothing persisted
    assert kubectl(cp, "get", "deployment", DEPLOYMENT, "-n", SYSTEM_NS, check=False).returncode

    out = deploy(cp)
    assert "Warning" not in out, out  # no PodSecurity (or any other) warning
    for crd in CRDS:
        conditions = get_json(cp, "crd", crd)["status"]["conditions"]
        assert {"type": "Established", "status": "True"}.items() <= next(
            c for c in conditions if c["type"] == "Established"
        ).items()
    # The Deployment's ReplicaSet creates the (kwok) pod: the restricted namespace admitted it.
    pods = wait_for(
        "the operator Deployment's pod",
        lambda: get_json(
            cp, "pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=controller-manager"
        )["items"],
        timeout=60,
    )
    assert pods[0]["spec"]["serviceAccountName"] == SA
    events = get_json(cp, "events", "-n", SYSTEM_NS)["items"]
    assert not [e for e in events if e.get("reason") == "FailedCreate"], events


def test_operator_with_the_service_account_token_converges_the_guide(
    ship_cluster: ControlPlane, tmp_path: Path
) -> None:
    cp = ship_cluster
    deploy(cp)
    ns = cp.create_namespace(prefix="ship-guide-")
    kubeconfig = sa_kubeconfig(cp, tmp_path / "sa.kubeconfig")
    # The token really is the ServiceAccount's, and RBAC (not admin rights) is what applies.
    whoami = json.loads(
        kubectl(cp, f"--kubeconfig={kubeconfig}", "auth", "whoami", "-o", "json").stdout
    )
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{SYSTEM_NS}:{SA}"
    # Secrets: list/watch/create only (the caches' passwords); no get, no writes to existing ones.
    for verb in ("get", "patch", "update", "delete"):
        can = kubectl(
            cp, f"--kubeconfig={kubeconfig}", "auth", "can-i", verb, "secrets", "-n", ns,
            check=False,
        )  # fmt: skip
        assert can.stdout.strip() == "no", verb

    fast_ssd(cp)
    with Operator(kubeconfig, tmp_path / "operator.log") as op:
        wait_for("the operator's /readyz", op.ready, timeout=60)
        wait_for("leadership", lambda: "Successfully acquired lease" in op.log(), timeout=30)

        apply_sample(cp, "quick-start.yaml", ns)
        op.converge(
            cp,
            ns,
            "Quick Start: kvcache-llama-chat Ready, llama-chat KVCacheReady",
            lambda: converged(cp, ns, ["kvcache-llama-chat"], ["llama-chat"]),
            timeout=CONVERGE_TIMEOUT,
        )
        apply_sample(cp, "custom-storage-size.yaml", ns)
        op.converge(
            cp,
            ns,
            "custom size: kvcache-llama-70b-chat Ready with 100Gi",
            lambda: converged(cp, ns, ["kvcache-llama-70b-chat"], ["llama-70b-chat"]),
            timeout=CONVERGE_TIMEOUT,
        )
        sts = get_json(cp, "statefulset", "kvcache-llama-70b-chat-statefulset", "-n", ns)
        claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
        assert claim["resources"]["requests"]["storage"] == "100Gi"

        apply_sample(cp, "shared-cache.yaml", ns)
        apply_sample(cp, "shared-cache-services.yaml", ns)
        op.converge(
            cp,
            ns,
            "shared cache: shared-cache Ready, llama-chat and llama-completion KVCacheReady",
            lambda: (
                converged(cp, ns, ["shared-cache"], ["llama-chat", "llama-completion"])
                and "kvcache-llama-chat" not in caches(cp, ns)
            ),
            timeout=CONVERGE_TIMEOUT,
        )
        pvc = get_json(cp, "pvc", "redis-data-shared-cache-statefulset-0", "-n", ns)
        assert pvc["spec"]["storageClassName"] == "fast-ssd"
        assert pvc["status"]["phase"] == "Bound"
        for name in ("llama-chat", "llama-completion"):
            svc = get_json(cp, "aimservice", name, "-n", ns)
            assert svc["status"]["resolvedKVCache"]["endpoint"] == "redis://shared-cache-svc:6379"

        assert not op.denials(), "the shipped RBAC refused requests:\n" + "\n".join(op.denials())
        # Leave nothing held by the operator's finalizers: delete while it still runs.
        kubectl(cp, "delete", "aimservices,aimkvcaches", "--all", "-n", ns, "--timeout=60s")
    cp.delete_namespace(ns)


def test_deployment_is_admitted_under_restricted_pod_security(ship_cluster: ControlPlane) -> None:
    cp = ship_cluster
    ns = "ship-restricted"
    labels = {
        f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
    }
    kubectl(
        cp,
        "apply",
        "--server-side",
        "-f",
        "-",
        input=dump(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}]
        ),
    )
    docs = render(cp, MANIFESTS / "default")
    ours = next(d for d in docs if d["kind"] == "Deployment")
    ours["metadata"]["namespace"] = ns
    ours["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    # Control: the same Deployment without its security settings is refused in this namespace.
    bare = json.loads(json.dumps(ours))
    bare["metadata"]["name"] = "unhardened"
    bare["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "unhardened"
    bare["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "unhardened"
    del bare["spec"]["template"]["spec"]["securityContext"]
    del bare["spec"]["template"]["spec"]["containers"][0]["securityContext"]

    applied = kubectl(cp, "apply", "--server-side", "-f", "-", input=dump([ours]))
    assert "Warning" not in applied.stderr, applied.stderr  # no "would violate PodSecurity"
    control = kubectl(cp, "apply", "--server-side", "-f", "-", input=dump([bare]))
    assert "would violate PodSecurity" in control.stderr, control.stderr

    selector = "app.kubernetes.io/component=controller-manager"
    wait_for(
        "the hardened Deployment's pod",
        lambda: get_json(cp, "pods", "-n", ns, "-l", selector)["items"],
        timeout=60,
    )

    def failed_creates() -> list[dict[str, Any]]:
        events = get_json(cp, "events", "-n", ns)["items"]
        return [e for e in events if e.get("reason") == "FailedCreate"]

    refused = wait_for("the unhardened ReplicaSet's FailedCreate", failed_creates, timeout=60)
    assert all("unhardened" in e["involvedObject"]["name"] for e in refused), refused
    assert all("violates PodSecurity" in e["message"] for e in refused), refused
    cp.delete_namespace(ns)
