"""The AIMService reconciler: the service's cache, its LMCache wiring, the inference workload.

- ``spec.kvCache.type``: the service owns ``kvcache-<service>`` and keeps its spec in line with
  ``spec.kvCache`` (growing the storage grows the cache's).
- ``spec.kvCache.name``: the service uses that AIMKVCache (same namespace) without owning or
  changing it; it is woken when the cache changes (a watch mapping, not polling).
- The ``KVCacheReady`` condition mirrors the cache: NotRequested, WaitingForKVCache,
  KVCacheProgressing, KVCacheReady, KVCacheFailed, KVCacheNotFound (and KVCacheConflict when a
  cache of the auto name exists but belongs to someone else).
- The workload (Deployment + Service): with a cache requested, the Deployment is first created
  once the cache is Ready, already wired to it (no unwired rollout followed by a wired one).
  Wiring is kept while the cache exists, so a cache blip does not roll the inference pods.

Summary status: Failed if the cache failed or cannot be used; Running when the Deployment is
available and the cache (if any) is Ready; Degraded when available but the cache is not; else
Starting (Pending before the Deployment exists).
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError

from aimctl.api.v1alpha1 import AUTO_KVCACHE_PREFIX, AIMService, KVCacheStatus, ServiceStatus
from aimctl.client import ApiError, Client
from aimctl.client._recorder import EventRecorder
from aimctl.controller import Request, Result, TerminalError
from aimctl.objects import find_condition, is_being_deleted, is_controlled_by, meta, set_condition
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    CONFIGMAP,
    CONFLICT_RECHECK,
    DEPLOYMENT,
    SERVICE,
    ChildConflict,
    apply_if_changed,
    apply_status_if_changed,
    observed_status,
    report_invalid,
)
from aimctl.reconcilers.service import _desired as desired
from aimctl.reconcilers.service._names import configmap_name

__all__ = ["ServiceReconciler"]

log = structlog.get_logger("aimctl.aimservice")

_STATUS_KEYS = frozenset(
    {"observedGeneration", "status", "conditions", "resolvedKVCache", "replicas", "readyReplicas"}
)


class ServiceReconciler:
    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    async def reconcile(self, req: Request) -> Result | None:
        raw = await self.client.get(AIMSERVICE, req.name, req.namespace)
        if raw is None or is_being_deleted(raw):
            return None  # children are garbage-collected through owner references
        try:
            svc = AIMService.model_validate(raw)
        except ValidationError as err:
            message = await report_invalid(
                self.client, self.recorder, raw, err, _STATUS_KEYS, last_error=False
            )
            raise TerminalError(message) from err

        ns = svc.namespace
        error: ApiError | ChildConflict | None = None
        kv_reason, kv_message, cache, failed = await self._cache(svc, raw)

        existing_cm = await self.client.get(CONFIGMAP, configmap_name(svc.name), ns)
        config: str | None = None
        endpoint = ((cache or {}).get("status") or {}).get("endpoint")
        cache_ready = kv_reason == "KVCacheReady"
        if cache is not None and endpoint and (cache_ready or existing_cm is not None):
            config = desired.lmcache_config(svc, endpoint)

        deploy = await self.client.get(DEPLOYMENT, svc.name, ns)
        # With a cache requested, the first rollout waits for it: starting the model unwired and
        # rolling it again seconds later would load the model twice.
        gated = svc.spec.kv_cache is not None and config is None and deploy is None
        try:
            if config is not None:
                await apply_if_changed(
                    self.client, desired.lmcache_configmap(svc, raw, config), existing_cm
                )
            if not gated:
                deploy = await apply_if_changed(
                    self.client, desired.deployment(svc, raw, config), deploy
                )
            await apply_if_changed(
                self.client, desired.service(svc, raw), await self.client.get(SERVICE, svc.name, ns)
            )
        except (ApiError, ChildConflict) as err:
            error = err
            log.warning("Apply failed", error=str(err))

        status = self._status(svc, raw, cache, deploy, kv_reason, kv_message, failed, error)
        await self._write_status(raw, status)
        if isinstance(error, ChildConflict):
            return Result(requeue_after=CONFLICT_RECHECK)
        if error is not None:
            raise error
        return None

    async def _cache(
        self, svc: AIMService, raw: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any] | None, bool]:
        """(KVCacheReady reason, message, the cache object, failed?)"""
        kv = svc.spec.kv_cache
        name = svc.kv_cache_name()
        await self._prune_own_cache(
            svc, raw, keep=name if kv is not None and kv.name is None else None
        )
        if kv is None or name is None:
            return "KVCacheNotRequested", "KV cache not requested", None, False
        cache = await self.client.get(AIMKVCACHE, name, svc.namespace)
        if kv.name is None:  # the service's own cache
            if cache is not None and not is_controlled_by(cache, raw):
                return (
                    "KVCacheConflict",
                    f"AIMKVCache {name} exists and is not owned by this service; delete it, or "
                    f"use it with spec.kvCache.name: {name}",
                    None,
                    True,
                )
            try:
                cache = await apply_if_changed(
                    self.client, desired.auto_cache(svc, raw, name), cache
                )
            except ApiError as err:
                return (
                    "KVCacheUpdateRejected",
                    f"AIMKVCache {name} rejected the change: {err}",
                    cache,
                    True,
                )
        elif cache is None:
            return (
                "KVCacheNotFound",
                f"AIMKVCache {name} not found in namespace {svc.namespace}; create it, or fix "
                "spec.kvCache.name",
                None,
                False,
            )
        status = (cache or {}).get("status") or {}
        state = status.get("status")
        detail = (find_condition(status.get("conditions"), "Ready") or {}).get("message")
        if state == KVCacheStatus.READY:
            return (
                "KVCacheReady",
                f"KV cache {name} is ready at {status.get('endpoint')}",
                cache,
                False,
            )
        if state == KVCacheStatus.FAILED:
            return (
                "KVCacheFailed",
                f"KV cache {name} failed: {status.get('lastError') or detail}",
                cache,
                True,
            )
        if state in (KVCacheStatus.PENDING, KVCacheStatus.PROGRESSING):
            return "KVCacheProgressing", f"KV cache {name} is {state}: {detail}", cache, False
        return "WaitingForKVCache", f"waiting for KV cache {name}", cache, False

    async def _prune_own_cache(
        self, svc: AIMService, raw: dict[str, Any], keep: str | None
    ) -> None:
        """Delete the cache this service created (``kvcache-<service>``) once it no longer wants
        it (its spec moved from ``kvCache.type`` to a shared cache, or dropped ``kvCache``)."""
        own = f"{AUTO_KVCACHE_PREFIX}{svc.name}"
        if keep == own:
            return
        cache = await self.client.get(AIMKVCACHE, own, svc.namespace)
        if cache is not None and is_controlled_by(cache, raw) and not is_being_deleted(cache):
            await self.client.delete(AIMKVCACHE, own, svc.namespace, uid=meta(cache)["uid"])
            self.recorder.event(
                raw,
                "Normal",
                "KVCacheDeleted",
                f"deleted AIMKVCache {own}: the service no longer uses it",
            )

    def _status(
        self,
        svc: AIMService,
        raw: dict[str, Any],
        cache: dict[str, Any] | None,
        deploy: dict[str, Any] | None,
        kv_reason: str,
        kv_message: str,
        cache_failed: bool,
        error: ApiError | ChildConflict | None,
    ) -> dict[str, Any]:
        gen = svc.metadata.generation
        old = observed_status(raw).get("conditions")
        dstatus = (deploy or {}).get("status") or {}
        ready_replicas = int(dstatus.get("readyReplicas") or 0)
        replicas = svc.spec.replicas
        available = deploy is not None and ready_replicas >= replicas
        cache_ok = kv_reason in ("KVCacheReady", "KVCacheNotRequested")

        if isinstance(error, ChildConflict):
            summary, reason, message = ServiceStatus.FAILED, "ChildConflict", str(error)
        elif error is not None:
            summary, reason, message = ServiceStatus.FAILED, "ApplyFailed", f"Apply failed: {error}"
        elif cache_failed:
            summary, reason, message = ServiceStatus.FAILED, kv_reason, kv_message
        elif deploy is None and not cache_ok:
            summary, reason = ServiceStatus.PENDING, kv_reason
            message = f"the model starts once its KV cache is ready: {kv_message}"
        elif deploy is None:
            summary, reason, message = (
                ServiceStatus.PENDING,
                "Creating",
                "creating the inference Deployment",
            )
        elif available and cache_ok:
            summary, reason, message = (
                ServiceStatus.RUNNING,
                "Running",
                f"{ready_replicas}/{replicas} replicas ready",
            )
        elif available:
            summary, reason, message = (
                ServiceStatus.DEGRADED,
                kv_reason,
                f"serving without its KV cache: {kv_message}",
            )
        else:
            summary, reason, message = (
                ServiceStatus.STARTING,
                "WaitingForReplicas",
                f"{ready_replicas}/{replicas} replicas ready",
            )

        conds = set_condition(
            old,
            "Ready",
            "True" if summary == ServiceStatus.RUNNING else "False",
            reason,
            message,
            observed_generation=gen,
        )
        conds = set_condition(
            conds,
            "KVCacheReady",
            "True" if cache_ok else "False",
            kv_reason,
            kv_message,
            observed_generation=gen,
        )
        status: dict[str, Any] = {
            "observedGeneration": gen,
            "status": str(summary),
            "conditions": conds,
            "replicas": replicas,
            "readyReplicas": ready_replicas,
        }
        if cache is not None:
            resolved: dict[str, Any] = {"name": meta(cache)["name"], "uid": meta(cache).get("uid")}
            endpoint = (cache.get("status") or {}).get("endpoint")
            if endpoint:
                resolved["endpoint"] = endpoint
            status["resolvedKVCache"] = resolved
        return status

    async def _write_status(self, raw: dict[str, Any], status: dict[str, Any]) -> None:
        if not await apply_status_if_changed(self.client, raw, status, _STATUS_KEYS):
            return
        old = observed_status(raw)
        old_kv = (find_condition(old.get("conditions"), "KVCacheReady") or {}).get("reason")
        new_kv = find_condition(status["conditions"], "KVCacheReady") or {}
        if new_kv.get("reason") != old_kv and new_kv.get("reason") != "KVCacheNotRequested":
            reason, message = str(new_kv.get("reason")), str(new_kv.get("message"))
            if reason in _BAD:
                self.recorder.event(raw, "Warning", reason, message)
            else:
                self.recorder.event(raw, "Normal", reason, message)


_BAD = frozenset({"KVCacheFailed", "KVCacheNotFound", "KVCacheConflict", "KVCacheUpdateRejected"})
