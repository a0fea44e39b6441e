"""The AIMKVCache reconciler skips a reconcile of exactly the state its last converged reconcile
left (``_Settled``), and that skip never changes an outcome.

The outcome check is differential: two identical fake worlds take the same changes; one is
reconciled by a single long-lived reconciler (which may skip), the other by a fresh reconciler
each time (which cannot). Their writes and statuses must agree after every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aimctl.client.testing import FakeClient, FakeEventRecorder
from aimctl.controller import Request
from aimctl.objects import find_condition
from aimctl.reconcilers import KVCacheReconciler
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    NETWORKPOLICY,
    SECRET,
    STATEFULSET,
    STORAGECLASS,
)
from aimctl.reconcilers.kvcache import _desired
from tests.unit.reconcilers.test_reconcilers_fake import (
    DEFAULT_CLASS,
    NS,
    aimservice,
    kvcache,
    simulate_ready_statefulset,
    simulate_running_pod,
    world,
)

REQ = Request(NS, "cache")


async def test_a_reconcile_of_what_the_last_one_left_builds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = world(kvcache(), DEFAULT_CLASS)
    reconciler = KVCacheReconciler(fake, FakeEventRecorder("aimkvcache-controller"))
    built: list[str] = []
    real = _desired.statefulset

    def counting(*args: Any, **kwargs: Any) -> dict[str, Any]:
        built.append("statefulset")
        return dict(real(*args, **kwargs))

    monkeypatch.setattr(_desired, "statefulset", counting)
    await reconciler.reconcile(REQ)
    assert built, "the first reconcile builds the StatefulSet"
    built.clear()
    fake.actions.clear()

    await reconciler.reconcile(REQ)

    assert built == [] and fake.actions == []


async def test_any_new_version_runs_the_whole_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = world(kvcache(), DEFAULT_CLASS)
    reconciler = KVCacheReconciler(fake, FakeEventRecorder("aimkvcache-controller"))
    await reconciler.reconcile(REQ)
    # Someone else edits the StatefulSet: a new version, so the drift is seen and corrected.
    await fake.with_field_manager("kubectl").patch(
        STATEFULSET, "cache-statefulset", NS, {"spec": {"replicas": 3}}
    )
    fake.actions.clear()

    await reconciler.reconcile(REQ)

    assert [(a.verb, a.gvk.kind) for a in fake.actions] == [("apply", "StatefulSet")]
    sts = await fake.get(STATEFULSET, "cache-statefulset", NS)
    assert sts is not None and sts["spec"]["replicas"] == 1


async def test_a_deleted_cache_is_forgotten() -> None:
    fake = world(kvcache(), DEFAULT_CLASS)
    reconciler = KVCacheReconciler(fake, FakeEventRecorder("aimkvcache-controller"))
    await reconciler.reconcile(REQ)
    assert reconciler._settled
    await fake.patch(AIMKVCACHE, "cache", NS, {"metadata": {"finalizers": None}})
    await fake.delete(AIMKVCACHE, "cache", NS)

    await reconciler.reconcile(REQ)

    assert reconciler._settled == {}


# -- differential: the skip never changes an outcome ---------------------------------------------

Change = Callable[[FakeClient], Awaitable[None]]


async def _nothing(fake: FakeClient) -> None:
    return None


async def _pod_ready(fake: FakeClient) -> None:
    simulate_running_pod(fake)
    await simulate_ready_statefulset(fake)


async def _service_uses_it(fake: FakeClient) -> None:
    if await fake.get(*_SERVICE_KEY) is None:
        await fake.create(aimservice(kv_cache={"name": "cache"}))


async def _drift(fake: FakeClient) -> None:
    if await fake.get(STATEFULSET, "cache-statefulset", NS) is not None:
        await fake.with_field_manager("kubectl").patch(
            STATEFULSET, "cache-statefulset", NS, {"spec": {"replicas": 2}}
        )


async def _secret_deleted(fake: FakeClient) -> None:
    await fake.delete(SECRET, "cache-auth", NS)


async def _netpol_deleted(fake: FakeClient) -> None:
    await fake.delete(NETWORKPOLICY, "cache-netpol", NS)


async def _status_edited(fake: FakeClient) -> None:
    await fake.with_field_manager("kubectl").patch(
        AIMKVCACHE, "cache", NS, {"status": {"status": "Ready"}}, subresource="status"
    )


async def _storage_grown(fake: FakeClient) -> None:
    await fake.patch(AIMKVCACHE, "cache", NS, {"spec": {"storage": {"size": "2Gi"}}})


async def _class_gone(fake: FakeClient) -> None:
    await fake.delete(STORAGECLASS, "standard")


_SERVICE_KEY = (AIMSERVICE, "chat", NS)
CHANGES: list[Change] = [
    _nothing,
    _pod_ready,
    _service_uses_it,
    _drift,
    _secret_deleted,
    _netpol_deleted,
    _status_edited,
    _storage_grown,
    _class_gone,
]


def _outcome(fake: FakeClient, cache: dict[str, Any] | None) -> tuple[Any, ...]:
    writes = tuple((a.verb, a.gvk.kind, a.name) for a in fake.actions)
    status = (cache or {}).get("status") or {}
    ready = find_condition(status.get("conditions"), "Ready") or {}
    return writes, status.get("status"), ready.get("reason"), status.get("users")


async def _reconciled(reconciler: KVCacheReconciler) -> Any:
    """What the reconcile returned, or the type of what it raised."""
    try:
        return await reconciler.reconcile(REQ)
    except Exception as err:
        return type(err)


async def _differential(changes: list[Change]) -> None:
    kept_world, fresh_world = world(kvcache(), DEFAULT_CLASS), world(kvcache(), DEFAULT_CLASS)
    kept = KVCacheReconciler(kept_world, FakeEventRecorder("aimkvcache-controller"))
    for step in [_nothing, *changes, _nothing]:
        for fake in (kept_world, fresh_world):
            await step(fake)
            fake.actions.clear()
        # Twice each: the second reconcile of the kept one is where it may skip.
        for _ in range(2):
            got = await _reconciled(kept)
            want = await _reconciled(KVCacheReconciler(fresh_world, FakeEventRecorder("x")))
            assert got == want, step.__name__
            assert _outcome(kept_world, await kept_world.get(AIMKVCACHE, "cache", NS)) == (
                _outcome(fresh_world, await fresh_world.get(AIMKVCACHE, "cache", NS))
            ), step.__name__


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(CHANGES), min_size=1, max_size=6))
def test_skipping_never_changes_what_a_reconcile_does(changes: list[Change]) -> None:
    asyncio.run(_differential(changes))
