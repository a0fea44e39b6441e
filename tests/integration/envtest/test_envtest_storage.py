"""Full mode's kwok binds the claims of *every* StorageClass with provisioner
``kwok.x-k8s.io/volume`` (not just ``kwok-volume``), grows expandable ones, and leaves the claims
of other provisioners alone.

kwok's volume stages are retargeted from the class name to the provisioner annotations
(``volume.kubernetes.io/storage-provisioner`` on claims, set by the controller-manager's PV
controller; ``pv.kubernetes.io/provisioned-by`` on the PVs kwok creates).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from aimctl.envtest import (
    KWOK_PROVISIONER,
    STORAGE_CLASS,
    ApiError,
    ControlPlane,
    SyncClient,
)
from aimctl.envtest._full import volume_stages
from aimctl.envtest.pytest_plugin import ControlPlaneFactory

T = TypeVar("T")
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
CLAIM_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
MERGE = "application/merge-patch+json"
DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)
    return value


def claim(client: SyncClient, ns: str, name: str, klass: str, size: str = "1Gi") -> None:
    spec = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
        "storageClassName": klass,
    }
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}}
    client.create(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {**body, "spec": spec})


def get_claim(client: SyncClient, ns: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.request(
        "GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}"
    )
    return found


def bound(client: SyncClient, ns: str, name: str) -> dict[str, Any] | None:
    pvc = get_claim(client, ns, name)
    return pvc if pvc["status"].get("phase") == "Bound" else None


def get_or_none(client: SyncClient, path: str) -> Any:
    try:
        return client.request("GET", path)
    except ApiError as e:
        if e.status == 404:
            return None
        raise


@pytest.fixture
def classes(full_control_plane: ControlPlane, full_namespace: str) -> Iterator[list[str]]:
    """Names for cluster-scoped StorageClasses, unique to the test; deleted afterwards."""
    names: list[str] = []
    yield names
    client = full_control_plane.client()
    for name in names:
        try:
            client.request("DELETE", f"{CLASSES}/{name}")
        except ApiError as e:
            if e.status != 404:
                raise


def test_a_claim_of_a_second_kwok_class_binds_and_its_volume_is_cleaned_up(
    full_control_plane: ControlPlane, full_namespace: str, classes: list[str]
) -> None:
    cp, ns = full_control_plane, full_namespace
    client = cp.client()
    classes.append(f"{ns}-second")
    sc = cp.add_storage_class(classes[0])
    assert sc["provisioner"] == KWOK_PROVISIONER
    assert sc["allowVolumeExpansion"] is False

    claim(client, ns, "data", classes[0])
    pvc = eventually("the claim to bind", lambda: bound(client, ns, "data"))
    assert pvc["metadata"]["annotations"][CLAIM_PROVISIONER] == KWOK_PROVISIONER
    assert pvc["status"]["capacity"] == {"storage": "1Gi"}
    pv_path = f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}"
    pv = client.request("GET", pv_path)
    assert pv["spec"]["storageClassName"] == classes[0]
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == KWOK_PROVISIONER
    eventually(
        "the PV to be Bound",
        lambda: client.request("GET", pv_path)["status"].get("phase") == "Bound",
    )

    # pvc-delete and pv-delete follow the provisioner too: the PV goes with its claim.
    client.request("DELETE", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data")
    eventually("the PV to be deleted", lambda: get_or_none(client, pv_path) is None)


def test_growing_a_claim_of_an_expandable_kwok_class_updates_its_capacity(
    full_control_plane: ControlPlane, full_namespace: str, classes: list[str]
) -> None:
    cp, ns = full_control_plane, full_namespace
    client = cp.client()
    classes += [f"{ns}-grows", f"{ns}-fixed"]
    assert cp.add_storage_class(classes[0], expandable=True)["allowVolumeExpansion"] is True
    cp.add_storage_class(classes[1])
    claim(client, ns, "grows", classes[0])
    claim(client, ns, "fixed", classes[1])
    eventually("both claims to bind", lambda: all(bound(client, ns, n) for n in ("grows", "fixed")))

    path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
    grow = {"spec": {"resources": {"requests": {"storage": "3Gi"}}}}
    client.request("PATCH", f"{path}/grows", grow, content_type=MERGE)
    eventually(
        "the new capacity",
        lambda: get_claim(client, ns, "grows")["status"]["capacity"] == {"storage": "3Gi"},
    )
    assert get_claim(client, ns, "grows")["status"]["phase"] == "Bound"

    # Without allowVolumeExpansion the API server refuses the growth: nothing to report.
    with pytest.raises(ApiError) as refused:
        client.request("PATCH", f"{path}/fixed", grow, content_type=MERGE)
    assert refused.value.status == 403
    assert "storageclass that provisions the pvc must support resize" in str(refused.value)


def test_a_class_with_another_provisioner_is_left_alone(
    full_control_plane: ControlPlane, full_namespace: str, classes: list[str]
) -> None:
    cp, ns = full_control_plane, full_namespace
    client = cp.client()
    other = "example.com/not-kwok"
    classes.append(f"{ns}-other")
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": classes[0]},
        "provisioner": other,
        "volumeBindingMode": "Immediate",
    }
    client.create(CLASSES, sc)
    claim(client, ns, "elsewhere", classes[0])
    # The PV controller has handed the claim to its provisioner (kwok saw it, too) ...
    eventually(
        "the PV controller to annotate the claim",
        lambda: (
            (get_claim(client, ns, "elsewhere")["metadata"].get("annotations") or {}).get(
                CLAIM_PROVISIONER
            )
            == other
        ),
    )
    # ... and kwok is not that provisioner: the claim stays Pending.
    time.sleep(2.0)
    pvc = get_claim(client, ns, "elsewhere")
    assert pvc["status"]["phase"] == "Pending"
    assert "volumeName" not in pvc["spec"]


def test_a_wait_for_first_consumer_kwok_class_binds_once_a_pod_is_scheduled(
    full_control_plane: ControlPlane, full_namespace: str, classes: list[str]
) -> None:
    # The PV controller annotates such a claim only after the scheduler picked a node, so kwok
    # provisions when a real provisioner would.
    cp, ns = full_control_plane, full_namespace
    client = cp.client()
    classes.append(f"{ns}-wffc")
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": classes[0]},
        "provisioner": KWOK_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    client.create(CLASSES, sc)
    claim(client, ns, "later", classes[0])
    time.sleep(2.0)
    assert get_claim(client, ns, "later")["status"]["phase"] == "Pending"

    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "later"}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "consumer"},
        "spec": {
            "containers": [{"name": "c", "image": "example.invalid/c:1"}],
            "volumes": [volume],
        },
    }
    client.create(f"/api/v1/namespaces/{ns}/pods", pod)
    pvc = eventually("the claim to bind", lambda: bound(client, ns, "later"))
    assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]


def defaults(client: SyncClient) -> list[str]:
    return [
        c["metadata"]["name"]
        for c in client.request("GET", CLASSES)["items"]
        if (c["metadata"].get("annotations") or {}).get(DEFAULT_ANNOTATION) == "true"
    ]


def test_add_storage_class_can_make_the_default(control_plane_factory: ControlPlaneFactory) -> None:
    # A private plane: the shared one's default class must stay kwok-volume.
    cp = control_plane_factory(full=True)
    client = cp.client()
    assert defaults(client) == [STORAGE_CLASS]
    for _ in range(2):  # idempotent: applying it again changes nothing
        cp.add_storage_class("fast", default=True, expandable=True)
        assert defaults(client) == ["fast"]
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"}}
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    client.create("/api/v1/namespaces/default/persistentvolumeclaims", {**body, "spec": spec})
    pvc = eventually("the claim to bind", lambda: bound(client, "default", "d"))
    assert pvc["spec"]["storageClassName"] == "fast"


def test_add_storage_class_needs_full_mode(control_plane: ControlPlane) -> None:
    with pytest.raises(RuntimeError, match="full-mode"):
        control_plane.add_storage_class("nope")


def test_the_volume_stages_select_by_provisioner(full_control_plane: ControlPlane) -> None:
    stages = volume_stages(full_control_plane.assets.kwok_stages / "volume" / "fast")
    by_name = {s["metadata"]["name"]: s["spec"] for s in stages}
    assert set(by_name) == {
        "pvc-provision",
        "pvc-delete",
        "pv-bind",
        "pv-delete",
        "pvc-resize",
        "pvc-resize-local",  # the real node's local-path claims (aimctl.envtest._node)
    }
    local = by_name.pop("pvc-resize-local")["selector"]["matchAnnotations"]
    assert local == {CLAIM_PROVISIONER: "rancher.io/local-path"}
    for name, spec in by_name.items():
        kind = spec["resourceRef"]["kind"]
        annotation = {
            "PersistentVolumeClaim": CLAIM_PROVISIONER,
            "PersistentVolume": "pv.kubernetes.io/provisioned-by",
        }[kind]
        assert spec["selector"]["matchAnnotations"] == {annotation: KWOK_PROVISIONER}, name
        expressions = [e["cel"]["expression"] for e in spec["selector"]["matchExpressions"]]
        assert not [e for e in expressions if "storageClassName" in e], name


def test_the_volume_stages_fail_loudly_when_kwok_changes_its_selector(tmp_path: Path) -> None:
    fast = tmp_path / "volume" / "fast"
    fast.mkdir(parents=True)
    (fast / "kustomization.yaml").write_text("resources: [pvc-provision.yaml]\n")
    stage = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pvc-provision"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "PersistentVolumeClaim"},
            "selector": {"matchExpressions": [{"cel": {"expression": "self.spec.x == 'y'"}}]},
            "steps": [],
        },
    }
    (fast / "pvc-provision.yaml").write_text(yaml.safe_dump(stage))
    with pytest.raises(ValueError, match="no longer selects on"):
        volume_stages(fast)
