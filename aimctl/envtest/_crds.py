"""Installing CustomResourceDefinitions and waiting until they are usable.

Mirrors envtest's ``crd.go``: create (or update) each CRD, then poll every 100 ms until it is
Established, its versions are in discovery, and a list succeeds (a new CRD's storage answers 429
"storage is (re)initializing" for a moment after discovery already shows it).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from aimctl.envtest._rest import ApiError, SyncClient

__all__ = ["CRD_PATH", "crd_documents", "install_crds", "permissive_crd"]

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crds(
    client: SyncClient, crds: Iterable[Mapping[str, Any] | Path], *, timeout: float = 60.0
) -> list[str]:
    """Create or update the CRDs and wait until each is usable; returns their names.

    Raises:
        ApiError: the server rejected a CRD.
        TimeoutError: a CRD was not usable within ``timeout`` seconds.
    """
    docs = list(crd_documents(crds))
    for doc in docs:
        name = doc["metadata"]["name"]
        try:
            client.request("POST", CRD_PATH, doc)
        except ApiError as e:
            if e.status != 409:
                raise
            current = client.request("GET", f"{CRD_PATH}/{name}")
            doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            client.request("PUT", f"{CRD_PATH}/{name}", doc)
    deadline = time.monotonic() + timeout
    pending = list(docs)
    while pending:
        pending = [d for d in pending if not _crd_ready(client, d)]
        if pending and time.monotonic() > deadline:
            names = ", ".join(d["metadata"]["name"] for d in pending)
            raise TimeoutError(f"CRDs not established after {timeout:.0f}s: {names}")
        if pending:
            time.sleep(0.1)
    return [d["metadata"]["name"] for d in docs]


def crd_documents(items: Iterable[Mapping[str, Any] | Path]) -> Iterable[dict[str, Any]]:
    """The CRDs among objects, YAML files and directories of YAML files (other kinds skipped)."""
    for item in items:
        if not isinstance(item, Path):
            yield copy.deepcopy(dict(item))  # install_crds sets resourceVersion on updates
            continue
        files = (
            sorted(item.glob("*.y*ml")) + sorted(item.glob("*.json")) if item.is_dir() else [item]
        )
        for f in files:
            for doc in yaml.safe_load_all(f.read_text()):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    yield doc


def _crd_ready(client: SyncClient, doc: Mapping[str, Any]) -> bool:
    name = doc["metadata"]["name"]
    try:
        crd = client.request("GET", f"{CRD_PATH}/{name}")
    except ApiError:
        return False
    conditions = (crd.get("status") or {}).get("conditions") or []
    if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
        return False
    spec = crd["spec"]
    plural = spec["names"]["plural"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        try:
            resources = client.request("GET", f"/apis/{spec['group']}/{version['name']}")
        except ApiError:
            return False
        if not any(r["name"] == plural for r in resources.get("resources", [])):
            return False
        # Discovery can list the resource before its storage (watch cache) is initialized, when
        # requests still get 429 "storage is (re)initializing": wait for a list to succeed.
        try:
            client.request(
                "GET", f"/apis/{spec['group']}/{version['name']}/{plural}", params={"limit": "1"}
            )
        except ApiError:
            return False
    return True


def permissive_crd(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The same CRD with no validation at all: spec and status keep anything. Install it,
    store objects, then install the real CRD: the objects are then as an older schema (or a
    write around validation) left them, which is what a controller must survive."""
    out: dict[str, Any] = copy.deepcopy(dict(doc))
    for version in out["spec"]["versions"]:
        version["schema"] = {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"x-kubernetes-preserve-unknown-fields": True},
                    "status": {"x-kubernetes-preserve-unknown-fields": True},
                },
            }
        }
        version.pop("subresources", None)
        version.pop("additionalPrinterColumns", None)
    return out
