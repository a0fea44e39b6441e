"""Fixtures for informer integration tests: async clients on the session control plane and a
test CRD. Helpers (eventually, store-vs-fresh-list) are in ``aimctl.informers.testing``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aimctl.client import GVK, RestClient, RESTMapper
from aimctl.envtest import ApiError, ControlPlane

WIDGET = GVK("informers.test.aimctl.dev", "v1", "Widget")
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.informers.test.aimctl.dev"},
    "spec": {
        "group": "informers.test.aimctl.dev",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="session")
def widget_crd(control_plane: ControlPlane) -> GVK:
    """The Widget CRD, created once and served by discovery."""
    client = control_plane.client()
    try:
        client.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD
        )
    except ApiError as e:
        if e.status != 409:
            raise
    deadline = time.monotonic() + 60
    while True:
        try:
            served = client.request("GET", f"/apis/{WIDGET.group}/{WIDGET.version}")
            if any(r.get("kind") == "Widget" for r in served.get("resources") or ()):
                return WIDGET
        except ApiError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the Widget CRD was not served within 60s")
        time.sleep(0.1)


@pytest_asyncio.fixture
async def rest(control_plane: ControlPlane) -> AsyncIterator[RestClient]:
    async with await RestClient.from_kubeconfig(str(control_plane.kubeconfig)) as client:
        yield client


@pytest.fixture
def mapper(rest: RestClient) -> RESTMapper:
    return RESTMapper(rest)
