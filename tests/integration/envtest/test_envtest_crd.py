"""Acceptance: a CRD with a status subresource and printer columns installs; a custom object is
created, changed by server-side apply with a field manager, and watched (ADDED, MODIFIED,
DELETED with increasing resourceVersions)."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiClient, CustomObjectsApi

from aimctl.envtest import ControlPlane

GROUP, VERSION, PLURAL = "envtest.aimctl.dev", "v1", "widgets"
MANAGER = "envtest-acceptance"
# kubernetes_asyncio's type hints omit _content_type; custom-object patches must always set it.
APPLY: dict[str, Any] = {"_content_type": "application/apply-patch+yaml"}
MERGE: dict[str, Any] = {"_content_type": "application/merge-patch+json"}

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": PLURAL,
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
        },
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _widget(namespace: str, size: int, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": namespace},
        "spec": {"size": size},
        **extra,
    }


async def test_crd_apply_and_watch(
    control_plane: ControlPlane, namespace: str, api: ApiClient
) -> None:
    assert control_plane.install_crds([CRD]) == [f"{PLURAL}.{GROUP}"]
    assert control_plane.install_crds([CRD])  # installing again updates in place
    custom = CustomObjectsApi(api)
    listed = await custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    events: list[tuple[str, dict[str, Any]]] = []

    async def collect() -> None:
        w = watch.Watch()
        async for event in w.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=60,
        ):
            events.append((event["type"], event["raw_object"]))
            if event["type"] == "DELETED":
                w.stop()

    watcher = asyncio.create_task(collect())
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _widget(namespace, 1)
    )
    applied = await custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "w1",
        _widget(namespace, 3, status={"phase": "ignored on the main resource"}),
        field_manager=MANAGER,
        force=True,
        **APPLY,
    )
    assert applied["spec"]["size"] == 3
    assert "status" not in applied  # the status subresource owns status
    assert MANAGER in {m["manager"] for m in applied["metadata"]["managedFields"]}
    status = await custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "w1",
        {"status": {"phase": "Ready"}},
        **MERGE,
    )
    assert status["status"]["phase"] == "Ready"
    assert status["metadata"]["generation"] == applied["metadata"]["generation"]
    table = control_plane.kubectl("get", f"{PLURAL}.{GROUP}", "-n", namespace).stdout.split()
    assert table == ["NAME", "SIZE", "PHASE", "w1", "3", "Ready"]  # the printer columns
    await custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w1")
    await asyncio.wait_for(watcher, 60)

    types = [t for t, _ in events]
    assert types[0] == "ADDED"
    assert types[-1] == "DELETED"
    assert "MODIFIED" in types
    versions = [int(obj["metadata"]["resourceVersion"]) for _, obj in events]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
