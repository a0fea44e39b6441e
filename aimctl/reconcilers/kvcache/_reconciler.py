"""The AIMKVCache reconciler: Redis StatefulSet + Service + NetworkPolicy, status, diagnosis.

Each reconcile, for one cache:

1. Read the cache and everything relevant from the informer cache (no API reads).
2. Deleting? Hold the deletion (finalizer ``aim.silogen.ai/kvcache-protection``) while any
   AIMService still uses the cache, with an Event saying which; release it when none does.
3. Storage growth: a larger ``storage.size`` expands the bound PVC (when its StorageClass allows
   it); once the claim is large enough, the StatefulSet (whose claim template is immutable) is
   deleted with ``propagationPolicy: Orphan`` and re-created: pods and PVCs are kept.
4. Converge the children with server-side apply, writing only what differs from the cache.
5. Compute the whole status (summary, conditions, diagnosis) and write it only if it changed;
   Events on transitions.

In sync, a reconcile makes no API request at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMKVCache, KVCacheStatus
from aimctl.client import ApiError, Client
from aimctl.client._recorder import EventRecorder
from aimctl.controller import Request, Result, TerminalError
from aimctl.objects import (
    find_condition,
    has_finalizer,
    is_being_deleted,
    meta,
    set_condition,
    with_finalizer,
    without_finalizer,
)
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    CONFLICT_RECHECK,
    NETWORKPOLICY,
    POD,
    PVC,
    RESOURCEQUOTA,
    SERVICE,
    STATEFULSET,
    STORAGECLASS,
    ChildConflict,
    apply_if_changed,
    apply_status_if_changed,
    observed_status,
    report_invalid,
)
from aimctl.reconcilers.kvcache import _desired as desired
from aimctl.reconcilers.kvcache._diagnosis import Finding, diagnose_pod, diagnose_storage
from aimctl.reconcilers.service._names import cache_name_of

__all__ = ["FINALIZER", "KVCacheReconciler"]

log = structlog.get_logger("aimctl.kvcache")

FINALIZER = "aim.silogen.ai/kvcache-protection"


class KVCacheReconciler:
    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    async def reconcile(self, req: Request) -> Result | None:
        raw = await self.client.get(AIMKVCACHE, req.name, req.namespace)
        if raw is None:
            return None  # deleted: its children go with it (owner references)
        try:
            cache = AIMKVCache.model_validate(raw)
        except ValidationError as err:
            # Stored before a schema change, or written around validation: report, don't crash.
            message = await report_invalid(
                self.client, self.recorder, raw, err, _STATUS_KEYS, last_error=True
            )
            raise TerminalError(message) from err

        users = await self._users(cache)
        if is_being_deleted(raw):
            await self._finalize(raw, users)
            return None
        if not has_finalizer(raw, FINALIZER):
            await self._patch_finalizers(raw, with_finalizer(raw, FINALIZER))

        ns, name = cache.namespace, cache.name
        sts = await self.client.get(STATEFULSET, desired.statefulset_name(name), ns)
        svc = await self.client.get(SERVICE, desired.service_name(name), ns)
        netpol = await self.client.get(NETWORKPOLICY, desired.network_policy_name(name), ns)
        pvc = await self.client.get(PVC, desired.pvc_name(name), ns)
        pod = await self.client.get(POD, f"{desired.statefulset_name(name)}-0", ns)
        classes = await self.client.list(STORAGECLASS)

        error: ApiError | ChildConflict | None = None
        try:
            sts = await self._converge_statefulset(cache, raw, sts, pvc, classes)
            svc = await apply_if_changed(self.client, desired.service(cache, raw), svc)
            netpol = await apply_if_changed(
                self.client, desired.network_policy(cache, raw, users), netpol
            )
        except (ApiError, ChildConflict) as err:
            error = err
            log.warning("Apply failed", error=str(err))

        quotas = await self.client.list(RESOURCEQUOTA, ns)
        now = datetime.now(UTC)
        storage = diagnose_storage(
            namespace=ns,
            pvc_name=desired.pvc_name(name),
            size=cache.spec.storage.size,
            class_name=cache.spec.storage.storage_class_name,
            pvc=pvc,
            statefulset_exists=sts is not None,
            classes=classes,
            quotas=quotas,
            now=now,
        )
        pod_finding = diagnose_pod(pod, f"{desired.statefulset_name(name)}-0", now)
        status = self._status(cache, raw, sts, svc, pvc, users, storage, pod_finding, error)
        await self._write_status(raw, status)
        if isinstance(error, ChildConflict):
            return Result(requeue_after=CONFLICT_RECHECK)
        if error is not None:
            raise error
        recheck = [f.recheck_after for f in (storage, pod_finding) if f and f.recheck_after]
        return Result(requeue_after=min(recheck)) if recheck else None

    # -- users and deletion ---------------------------------------------------------------------

    async def _users(self, cache: AIMKVCache) -> list[str]:
        services = await self.client.list(AIMSERVICE, cache.namespace)
        return sorted(
            meta(s)["name"]
            for s in services
            if cache_name_of(s) == cache.name and not is_being_deleted(s)
        )

    async def _finalize(self, raw: dict[str, Any], users: list[str]) -> None:
        if not has_finalizer(raw, FINALIZER):
            return
        if users:
            self.recorder.event(
                raw,
                "Warning",
                "DeletionBlocked",
                f"AIMKVCache {meta(raw)['name']} is in use by AIMService {', '.join(users)}; it "
                "will be deleted when no service uses it (delete those services or change "
                "their spec.kvCache)",
                action="Delete",
            )
            return
        await self._patch_finalizers(raw, without_finalizer(raw, FINALIZER))

    async def _patch_finalizers(self, raw: dict[str, Any], finalizers: list[str]) -> None:
        # Guarded by resourceVersion: a concurrent finalizer change makes this 409 and retry.
        await self.client.patch(
            AIMKVCACHE,
            meta(raw)["name"],
            meta(raw)["namespace"],
            {
                "metadata": {
                    "finalizers": finalizers,
                    "resourceVersion": meta(raw)["resourceVersion"],
                }
            },
        )

    # -- children -------------------------------------------------------------------------------

    async def _converge_statefulset(
        self,
        cache: AIMKVCache,
        raw: dict[str, Any],
        sts: dict[str, Any] | None,
        pvc: dict[str, Any] | None,
        classes: list[dict[str, Any]],
    ) -> dict[str, Any] | None:
        want_size = cache.spec.storage.size
        if sts is None:
            return await apply_if_changed(self.client, desired.statefulset(cache, raw), None)
        templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or [{}]
        sts_size = (
            ((templates[0].get("spec") or {}).get("resources") or {})
            .get("requests", {})
            .get("storage")
        )
        if sts_size and quantity.compare(sts_size, want_size) < 0:
            grown = await self._grow(cache, raw, sts, pvc, classes, sts_size)
            if not grown:
                # Keep the live (immutable) claim template until the claim has grown.
                return await apply_if_changed(
                    self.client, desired.statefulset(cache, raw, storage_size=sts_size), sts
                )
            return None
        return await apply_if_changed(
            self.client, desired.statefulset(cache, raw, storage_size=sts_size or want_size), sts
        )

    async def _grow(
        self,
        cache: AIMKVCache,
        raw: dict[str, Any],
        sts: dict[str, Any],
        pvc: dict[str, Any] | None,
        classes: list[dict[str, Any]],
        sts_size: str,
    ) -> bool:
        """Expand the claim, then re-create the StatefulSet with the new template. True when the
        StatefulSet was deleted (it is re-created on the next reconcile)."""
        want = quantity.format_quantity(cache.spec.storage.size)
        if pvc is not None:
            requested = pvc["spec"]["resources"]["requests"]["storage"]
            if quantity.compare(requested, want) < 0:
                klass = next(
                    (c for c in classes if meta(c)["name"] == pvc["spec"].get("storageClassName")),
                    None,
                )
                if klass is None or not klass.get("allowVolumeExpansion"):
                    return False  # diagnosed as ExpansionNotSupported; nothing to do
                await self.client.patch(
                    PVC,
                    meta(pvc)["name"],
                    meta(pvc)["namespace"],
                    {"spec": {"resources": {"requests": {"storage": want}}}},
                )
                self.recorder.event(
                    raw,
                    "Normal",
                    "ExpandingStorage",
                    f"expanding PVC {meta(pvc)['name']} from {requested} to {want}",
                )
        await self.client.delete(
            STATEFULSET,
            meta(sts)["name"],
            meta(sts)["namespace"],
            propagation_policy="Orphan",
            uid=meta(sts)["uid"],
        )
        self.recorder.event(
            raw,
            "Normal",
            "StatefulSetRecreated",
            f"re-creating StatefulSet {meta(sts)['name']} with storage {want} (was {sts_size}); "
            "its pod and PVC are kept",
        )
        return True

    # -- status ---------------------------------------------------------------------------------

    def _status(
        self,
        cache: AIMKVCache,
        raw: dict[str, Any],
        sts: dict[str, Any] | None,
        svc: dict[str, Any] | None,
        pvc: dict[str, Any] | None,
        users: list[str],
        storage: Finding,
        pod: Finding | None,
        error: ApiError | ChildConflict | None,
    ) -> dict[str, Any]:
        name = cache.name
        gen = cache.metadata.generation
        old = observed_status(raw).get("conditions")
        sts_status = (sts or {}).get("status") or {}
        ready_replicas = int(sts_status.get("readyReplicas") or 0)
        replicas = int(((sts or {}).get("spec") or {}).get("replicas") or 1)
        endpoint = desired.endpoint(name)

        if isinstance(error, ChildConflict):
            summary, reason, message = KVCacheStatus.FAILED, "ChildConflict", str(error)
        elif error is not None:
            summary, reason, message = KVCacheStatus.FAILED, "ApplyFailed", f"Apply failed: {error}"
        elif pod is not None and pod.failed:
            summary, reason, message = KVCacheStatus.FAILED, pod.reason, pod.message
        elif storage.failed:
            summary, reason, message = KVCacheStatus.FAILED, storage.reason, storage.message
        elif sts is not None and svc is not None and ready_replicas >= 1:
            summary, reason, message = (
                KVCacheStatus.READY,
                "Ready",
                f"Redis is ready at {endpoint} ({ready_replicas}/{replicas} replicas)",
            )
        elif sts is None:
            summary, reason, message = (
                KVCacheStatus.PENDING,
                "Creating",
                "creating the StatefulSet and Service",
            )
        elif not storage.ok:
            summary, reason, message = KVCacheStatus.PROGRESSING, storage.reason, storage.message
        elif pod is not None:
            summary, reason, message = KVCacheStatus.PROGRESSING, pod.reason, pod.message
        else:
            summary, reason, message = (
                KVCacheStatus.PROGRESSING,
                "WaitingForPods",
                f"waiting for pod {desired.statefulset_name(name)}-0 to be ready "
                f"({ready_replicas}/{replicas})",
            )

        conds = set_condition(
            old,
            "Ready",
            "True" if summary == KVCacheStatus.READY else "False",
            reason,
            message,
            observed_generation=gen,
        )
        progressing = summary in (KVCacheStatus.PENDING, KVCacheStatus.PROGRESSING)
        conds = set_condition(
            conds,
            "Progressing",
            "True" if progressing else "False",
            reason,
            message,
            observed_generation=gen,
        )
        conds = set_condition(
            conds,
            "StorageReady",
            "True" if storage.ok else "False",
            storage.reason,
            storage.message,
            observed_generation=gen,
        )
        status: dict[str, Any] = {
            "observedGeneration": gen,
            "status": str(summary),
            "conditions": conds,
            "replicas": replicas,
            "readyReplicas": ready_replicas,
            "statefulSetName": desired.statefulset_name(name),
            "serviceName": desired.service_name(name),
        }
        if svc is not None:
            status["endpoint"] = endpoint
        capacity = (((pvc or {}).get("status") or {}).get("capacity") or {}).get("storage")
        status["storageSize"] = capacity or quantity.format_quantity(cache.spec.storage.size)
        if summary == KVCacheStatus.FAILED:
            status["lastError"] = message
        if users:
            status["users"] = users
        return status

    async def _write_status(self, raw: dict[str, Any], status: dict[str, Any]) -> None:
        if await apply_status_if_changed(self.client, raw, status, _STATUS_KEYS):
            self._events(raw, observed_status(raw), status)

    def _events(self, raw: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> None:
        ready = find_condition(new.get("conditions"), "Ready") or {}
        old_ready = find_condition(old.get("conditions"), "Ready") or {}
        if new["status"] == old.get("status") and ready.get("reason") == old_ready.get("reason"):
            return
        if new["status"] == KVCacheStatus.READY:
            self.recorder.event(
                raw,
                "Normal",
                "KVCacheReady",
                f"KVCache is ready with {new.get('readyReplicas')}/{new.get('replicas')} "
                f"replicas at endpoint {new.get('endpoint')}",
            )
        elif new["status"] == KVCacheStatus.FAILED or ready.get("reason") in _WARN_REASONS:
            self.recorder.event(raw, "Warning", str(ready.get("reason")), str(ready.get("message")))
        elif new["status"] != old.get("status"):
            self.recorder.event(raw, "Normal", f"KVCache{new['status']}", str(ready.get("message")))


_STATUS_KEYS = frozenset(
    {
        "observedGeneration",
        "status",
        "conditions",
        "replicas",
        "readyReplicas",
        "endpoint",
        "statefulSetName",
        "serviceName",
        "storageSize",
        "lastError",
        "users",
    }
)
# Not-Ready reasons that need a user's attention get a Warning Event when they first appear.
_WARN_REASONS = frozenset(
    {
        "StorageClassNotFound",
        "NoDefaultStorageClass",
        "QuotaExceeded",
        "ClaimPending",
        "ClaimLost",
        "ExpansionNotSupported",
        "Unschedulable",
    }
)
