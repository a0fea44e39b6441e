"""The tenancy ClusterRoles aggregate into the built-in ``admin``/``edit``/``view`` roles on a
real cluster (the aggregation controller runs in kube-controller-manager, so this needs the full
control plane): whoever may edit a namespace may edit its AIM objects, but not their status;
whoever may view it may read them.

Only the four ClusterRoles are applied (not the admission policy, which is cluster-wide and
tested on a private server in ``test_ship_tenancy_policy.py``); they are deleted afterwards, and
the aggregation controller takes their rules back out of the built-in roles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import pytest

from aimctl.envtest import ControlPlane, User, run_kubectl

from .ship_env import MANIFESTS, kubectl, wait_for

ROLES = ("aimservice-editor", "aimservice-viewer", "aimkvcache-editor", "aimkvcache-viewer")
GROUP = "aim.silogen.ai"


def aggregated(cp: ControlPlane, role: str, resource: str, verb: str) -> bool:
    rules = kubectl(cp, "get", "clusterrole", role, "-o", "json").stdout
    return any(
        GROUP in r.get("apiGroups", [])
        and resource in r.get("resources", [])
        and verb in r.get("verbs", [])
        for r in json.loads(rules).get("rules") or []
    )


@pytest.fixture
def tenancy_roles(full_control_plane: ControlPlane) -> Iterator[ControlPlane]:
    cp = full_control_plane
    # kubectl auth can-i resolves the resource through discovery: the CRDs must be served.
    cp.install_crds([MANIFESTS / "crds"])
    files = [f"-f={MANIFESTS / 'tenancy' / (r.replace('-', '_') + '_role.yaml')}" for r in ROLES]
    kubectl(cp, "apply", "--server-side", *files)
    try:
        yield cp
    finally:
        kubectl(cp, "delete", "clusterrole", *ROLES, "--ignore-not-found")


def can_i(
    cp: ControlPlane, user: User, ns: str, verb: str, resource: str, subresource: str = ""
) -> bool:
    """``kubectl auth can-i`` as ``user``, the resource named with its group."""
    args = ["auth", "can-i", verb, f"{resource}.{GROUP}", "-n", ns]
    if subresource:
        args.append(f"--subresource={subresource}")
    out = run_kubectl(cp.assets.path("kubectl"), user.kubeconfig, *args, check=False)
    return out.stdout.strip() == "yes"


def test_the_roles_aggregate_into_edit_and_view(
    tenancy_roles: ControlPlane, full_namespace: str
) -> None:
    cp, ns = tenancy_roles, full_namespace
    for role, verb in (("admin", "create"), ("edit", "create"), ("view", "list")):
        for resource in ("aimservices", "aimkvcaches"):
            wait_for(
                f"{verb} {resource} in the built-in {role} role",
                partial(aggregated, cp, role, resource, verb),
                timeout=60,
            )
    editor, viewer = cp.add_user("tenant-editor"), cp.add_user("tenant-viewer")
    kubectl(
        cp, "-n", ns, "create", "rolebinding", "e", "--clusterrole=edit", "--user=tenant-editor"
    )
    kubectl(
        cp, "-n", ns, "create", "rolebinding", "v", "--clusterrole=view", "--user=tenant-viewer"
    )
    for resource in ("aimservices", "aimkvcaches"):
        wait_for(
            f"edit to grant create on {resource}",
            partial(can_i, cp, editor, ns, "create", resource),
            timeout=30,
        )
        for verb in ("get", "list", "watch", "update", "patch", "delete"):
            assert can_i(cp, editor, ns, verb, resource), (verb, resource)
        for verb in ("update", "patch"):
            assert not can_i(cp, editor, ns, verb, resource, "status"), (verb, resource)
        assert can_i(cp, editor, ns, "get", resource, "status")
        for verb in ("get", "list", "watch"):
            assert can_i(cp, viewer, ns, verb, resource), (verb, resource)
        for verb in ("create", "update", "patch", "delete"):
            assert not can_i(cp, viewer, ns, verb, resource), (verb, resource)
