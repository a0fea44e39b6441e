"""etcd compacted past the operator's watches while it is partitioned from the API server.

Injected: the operator reaches the API server through a TCP proxy. Once 20 caches have converged,
the proxy drops every connection and holds new ones (a network partition). Meanwhile, directly:
5 caches get a new image, 3 are created, 2 are deleted (they carry the operator's finalizer, so
they wait for it), and etcd is compacted to its current revision. Then the partition heals.

Without the apiserver's watch cache (``watch-cache=false``) a watch is served by etcd, so the
re-opened watches ask for a compacted revision and get 410 Gone: the informers must relist.

Asserted: the AIMKVCache informer relisted (``aimctl_informer_relists_total``) after a ``gone``
watch error (``aimctl_informer_watch_errors_total{reason="gone"}``); nothing was lost: the changed
caches' StatefulSets run the new image with a status for the new generation, the new caches
converged, the deleted ones were released and are gone, the operator's cache equals the server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aimctl.client import GVK, RestClient
from aimctl.envtest.pytest_plugin import ControlPlaneFactory

from .reliability_kit import (
    CRDS,
    InProcessOperator,
    PartitionProxy,
    apply_all,
    audit,
    cache_manifest,
    eventually,
    kvcaches_path,
    list_items,
    report,
    run_operator,
    total,
)

AIMKVCACHE = GVK("aim.silogen.ai", "v1alpha1", "AIMKVCache")
KIND_LABEL = "aim.silogen.ai/v1alpha1/AIMKVCache"
N = 20
NEW_IMAGE = "redis:7.2.5"


def _cached_names(op: InProcessOperator) -> set[str]:
    return {
        o["metadata"]["name"]
        for i in op.mgr.informers.informers_for(AIMKVCACHE)
        for o in i.store.list()
    }


def _resource_version(op: InProcessOperator) -> int:
    """Where the operator's AIMKVCache watch stands."""
    reflector = op.mgr.informers.informers_for(AIMKVCACHE)[0].reflector
    assert reflector is not None and reflector.resource_version is not None
    return int(reflector.resource_version)


async def test_etcd_compaction_during_a_partition_relists_and_loses_nothing(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    cp = control_plane_factory(apiserver_args={"watch-cache": "false"})
    await asyncio.to_thread(cp.install_crds, CRDS)
    ns = await asyncio.to_thread(cp.create_namespace, None, prefix="rel-compact-")
    proxy = PartitionProxy(int(cp.url.rsplit(":", 1)[1]))
    await proxy.start()
    scope = f"namespace={ns}"
    names = [f"cache-{i:02d}" for i in range(N)]
    changed, deleted = names[:5], names[5:7]
    created = [f"late-{i}" for i in range(3)]
    try:
        async with (
            await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest,
            run_operator(cp.kubeconfig, ns, host=proxy.url) as op,
        ):
            await apply_all(rest, (cache_manifest(n, ns) for n in names))

            async def converged(expected: int) -> bool:
                return op.drained() and (await audit(rest, ns)).complete(expected)

            await eventually(
                lambda: converged(N), within=180, what=f"{N} caches converged", alive=op.task
            )
            before = op.metrics()
            rv_before = _resource_version(op)

            await proxy.partition()

            async def noticed() -> bool:
                return total(
                    op.metrics(), "aimctl_informer_watch_errors_total", kind=KIND_LABEL
                ) > total(before, "aimctl_informer_watch_errors_total", kind=KIND_LABEL)

            await eventually(noticed, within=60, what="the operator noticed the partition")
            await apply_all(rest, (cache_manifest(n, ns, image=NEW_IMAGE) for n in changed))
            await apply_all(rest, (cache_manifest(n, ns) for n in created))
            for name in deleted:
                await rest.request("DELETE", kvcaches_path(ns, name))
            revision = await asyncio.to_thread(cp.compact_etcd)
            partitioned_writes = op.writes()
            proxy.heal()
            healed = time.monotonic()

            expected = N - len(deleted) + len(created)

            async def recovered() -> bool:
                live = {c["metadata"]["name"] for c in await list_items(rest, kvcaches_path(ns))}
                return (
                    live == _cached_names(op)
                    and len(live) == expected
                    and await converged(expected)
                )

            await eventually(
                recovered, within=180, what="the changes reconciled after the heal", alive=op.task
            )
            recovery = time.monotonic() - healed
            after = op.metrics()
            final = await audit(rest, ns)
            caches = {c["metadata"]["name"]: c for c in await list_items(rest, kvcaches_path(ns))}
            op.assert_alive()

        def delta(name: str, **labels: str) -> int:
            return int(total(after, name, **labels) - total(before, name, **labels))

        relists = delta("aimctl_informer_relists_total", kind=KIND_LABEL, scope=scope)
        gone = delta("aimctl_informer_watch_errors_total", kind=KIND_LABEL, reason="gone")
        figures: dict[str, Any] = {
            "objects": N,
            "faults": "partition + etcd compaction",
            "changes_while_away": {
                "updated": len(changed),
                "created": len(created),
                "deleted": len(deleted),
            },
            "compacted_to_revision": revision,
            "operator_rv_before": rv_before,
            "objects_lost": expected - final.converged,
            "kvcache_relists": relists,
            "kvcache_watch_errors_gone": gone,
            "all_informer_relists": delta("aimctl_informer_relists_total"),
            "all_watch_errors_gone": delta("aimctl_informer_watch_errors_total", reason="gone"),
            "connections_dropped": proxy.dropped,
            "recovery_s": round(recovery, 1),
            "operator_writes_after_heal": op.writes() - partitioned_writes,
        }
    finally:
        await proxy.close()
    report("etcd_compaction", figures)
    assert revision > rv_before
    assert gone >= 1, "the re-opened watch did not get 410 Gone"
    assert relists >= 1, "the AIMKVCache informer did not relist"
    assert final.complete(expected)
    for name in changed:
        assert (
            caches[name]["status"]["observedGeneration"] == caches[name]["metadata"]["generation"]
        )
        assert caches[name]["metadata"]["generation"] == 2
    assert not set(deleted) & set(caches)
    assert set(created) <= set(caches)
