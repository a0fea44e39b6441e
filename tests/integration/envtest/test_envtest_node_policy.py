"""The real-node policy on the real apiserver: a matching pod gets the real node's selector and
toleration, added to what it had; a pod without the labels is left alone."""

from __future__ import annotations

import json
from typing import Any

from aimctl.envtest import ControlPlane, real_node_policy, real_pod_scheduling


def _pod(name: str, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x"}], **spec},
    }


def _created(cp: ControlPlane, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    out = cp.kubectl("create", "-n", namespace, "-o", "json", "-f", "-", input=json.dumps(pod))
    created: dict[str, Any] = json.loads(out.stdout)
    return created


def test_policy_sends_labelled_pods_to_the_real_node(
    control_plane: ControlPlane, namespace: str
) -> None:
    name = f"real-node-{namespace}"
    for obj in real_node_policy(name, {"app.kubernetes.io/name": "aimkvcache"}):
        control_plane.kubectl("apply", "-f", "-", input=json.dumps(obj))
    try:
        want = real_pod_scheduling()
        labelled = {"app.kubernetes.io/name": "aimkvcache"}
        # The policy is enforced once the apiserver has loaded it: retry the first create.
        for attempt in range(50):
            bare = _created(control_plane, namespace, _pod(f"bare-{attempt}", labelled))
            if "nodeSelector" in bare["spec"]:
                break
        assert bare["spec"]["nodeSelector"] == want["nodeSelector"]
        assert want["tolerations"][0] in bare["spec"]["tolerations"]

        other = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
        kept = _created(
            control_plane,
            namespace,
            _pod("kept", labelled, nodeSelector={"disk": "ssd"}, tolerations=[other]),
        )
        assert kept["spec"]["nodeSelector"] == {"disk": "ssd", **want["nodeSelector"]}
        tolerations = kept["spec"]["tolerations"]
        assert tolerations[0] == other  # kept, and the real node's added (after the defaults)
        assert want["tolerations"][0] in tolerations[1:]

        plain = _created(control_plane, namespace, _pod("plain", {"app": "other"}))
        assert "nodeSelector" not in plain["spec"]
        unlabelled = _created(control_plane, namespace, _pod("unlabelled", {}))
        assert "nodeSelector" not in unlabelled["spec"]
    finally:
        control_plane.kubectl(
            "delete", "mutatingadmissionpolicy,mutatingadmissionpolicybinding", name
        )
