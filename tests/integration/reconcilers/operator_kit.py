"""Helpers for the operator tests: an in-process operator and cluster-side fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimctl.client import load_kubeconfig
from aimctl.envtest import ControlPlane
from aimctl.manager import Manager
from aimctl.reconcilers import add_to_manager

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "manifests" / "samples"
CRDS = sorted((ROOT / "manifests" / "crds").glob("aim.silogen.ai_*.yaml"))


@dataclass
class Operator:
    """A running operator and helpers to drive the cluster like the guide does."""

    cp: ControlPlane
    namespace: str
    mgr: Manager
    task: asyncio.Task[None]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self.cp.kubectl(*args, input=input, check=check).stdout

    async def k(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """kubectl in a thread, so the in-process operator keeps running meanwhile."""
        return await asyncio.to_thread(self.kubectl, *args, input=input, check=check)

    async def apply_sample(self, name: str) -> None:
        text = (
            (SAMPLES / name)
            .read_text()
            .replace("namespace: ml-team", f"namespace: {self.namespace}")
        )
        await self.k("apply", "-f", "-", input=text)

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        out = await self.k(
            "get", kind, name, "-n", self.namespace, "-o", "json", "--ignore-not-found"
        )
        return json.loads(out) if out.strip() else None

    async def wait(self, what: str, predicate: Callable[[], Any], within: float = 60.0) -> Any:
        deadline = time.monotonic() + within
        last: Any = None
        while time.monotonic() < deadline:
            if self.task.done():
                self.task.result()
                raise AssertionError("the operator stopped")
            last = await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()
            if last:
                return last
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")

    async def wait_status(
        self, kind: str, name: str, status: str, within: float = 60.0
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            obj = await self.get(kind, name)
            return obj if obj and (obj.get("status") or {}).get("status") == status else None

        result: dict[str, Any] = await self.wait(f"{kind}/{name} {status}", check, within)
        return result


def storage_class(
    cp: ControlPlane, name: str, *, expandable: bool = False, provisioner: str | None = None
) -> None:
    """A StorageClass: kwok-provisioned (claims bind; growth updates capacity) unless another
    ``provisioner`` is named, whose claims then stay Pending as nobody serves them."""
    if provisioner is None:
        cp.add_storage_class(name, expandable=expandable)
        return
    body = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": expandable,
    }
    cp.kubectl("apply", "-f", "-", input=json.dumps(body))


@contextlib.asynccontextmanager
async def start_operator(cp: ControlPlane, namespace: str) -> AsyncIterator[Operator]:
    config = await load_kubeconfig(str(cp.kubeconfig))
    mgr = Manager(
        config, namespaces=[namespace], metrics_bind_address="0", health_probe_bind_address="0"
    )
    add_to_manager(mgr)
    task = asyncio.create_task(mgr.run())
    op = Operator(cp, namespace, mgr, task)
    try:
        await op.wait(
            "caches synced",
            lambda: all(i.has_synced for i in mgr.informers.informers) and mgr.informers.informers,
        )
        yield op
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
