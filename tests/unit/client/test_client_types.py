"""GVK and Resource: names and REST paths."""

from __future__ import annotations

import pytest

from aimctl.client import GVK, Resource


def test_gvk_api_version_for_core_and_named_groups() -> None:
    assert GVK("", "v1", "Pod").api_version == "v1"
    assert GVK("apps", "v1", "Deployment").api_version == "apps/v1"
    assert str(GVK("apps", "v1", "Deployment")) == "apps/v1/Deployment"


def test_gvk_from_api_version_and_of_object() -> None:
    assert GVK.from_api_version("v1", "ConfigMap") == GVK("", "v1", "ConfigMap")
    assert GVK.from_api_version("aim.amd.com/v1alpha1", "AIMKVCache") == GVK(
        "aim.amd.com", "v1alpha1", "AIMKVCache"
    )
    assert GVK.of({"apiVersion": "apps/v1", "kind": "StatefulSet"}) == GVK(
        "apps", "v1", "StatefulSet"
    )
    with pytest.raises(ValueError):
        GVK.of({"kind": "X"})
    with pytest.raises(ValueError):
        GVK.from_api_version("/v1", "X")


def test_gvk_is_hashable_and_frozen() -> None:
    g = GVK("", "v1", "Pod")
    assert {g: 1}[GVK("", "v1", "Pod")] == 1
    with pytest.raises(AttributeError):
        g.kind = "X"  # type: ignore[misc]


def test_resource_paths_for_namespaced_kinds() -> None:
    r = Resource(GVK("apps", "v1", "Deployment"), "deployments", namespaced=True)
    assert r.path() == "/apis/apps/v1/deployments"
    assert r.collection_path("ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert r.path("ns", "web") == "/apis/apps/v1/namespaces/ns/deployments/web"
    assert r.path("ns", "web", "status") == "/apis/apps/v1/namespaces/ns/deployments/web/status"
    with pytest.raises(ValueError, match="needs a namespace"):
        r.path(name="web")
    with pytest.raises(ValueError, match="subresource needs a name"):
        r.path("ns", subresource="status")


def test_resource_paths_for_cluster_scoped_core_kinds_and_escaping() -> None:
    r = Resource(GVK("", "v1", "Node"), "nodes", namespaced=False)
    assert r.path(name="n/1") == "/api/v1/nodes/n%2F1"
    with pytest.raises(ValueError, match="cluster-scoped"):
        r.path("ns")
