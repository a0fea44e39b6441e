"""The AIMService reconciler: the service's cache, its LMCache wiring, the inference workload.

- ``spec.kvCache.type``: the service owns ``kvcache-<service>`` and keeps its spec in line with
  the fields the user set in ``spec.kvCache`` (growing the storage grows the cache's; a cache
  grown directly is not shrunk back). It adopts an orphan of that name that it created for a
  service of the same name (``--cascade=orphan``), and waits while the cache of an earlier
  service of the same name is being garbage-collected.
- ``spec.kvCache.name``: the service uses that AIMKVCache (same namespace) without owning or
  changing it; it is woken when the cache changes (a watch mapping, not polling). Switching
  from ``type`` to ``name: kvcache-<service>`` keeps the cache and releases ownership of it.
- The endpoint is derived from the cache's name (``redis://<cache>-svc:6379``), never read
  from the cache's status, which anyone with ``/status`` access could rewrite.
- The ``KVCacheReady`` condition mirrors the cache: NotRequested, WaitingForKVCache,
  KVCacheProgressing, KVCacheReady, KVCacheFailed, KVCacheNotFound (and KVCacheConflict when a
  cache of the auto name exists but belongs to someone else).
- The workload (Deployment + Service): with a cache requested, the Deployment is first created
  once the cache is Ready and its password Secret is in the cache, already wired to both (no
  unwired rollout followed by a wired one). Wiring is kept while the cache exists, so a cache
  blip does not roll the inference pods.
- The password: the pods read it from the cache's Secret by ``secretKeyRef``; the operator reads
  the Secret only from its informer cache, to put ``password_hash`` in the pod template (a new
  password rolls the pods). While the Secret is gone (deleted to rotate; the cache controller
  creates a new one), the live hash is kept, so the pods roll once, to the new password.
- The workload's own problems (``diagnose_deployment``: a ReplicaSet that cannot create pods,
  pods that cannot pull, crash, are OOM-killed) are the Ready reason and a Warning Event.

Summary status: Failed if the cache failed or cannot be used, a child name is taken
(``ChildConflict``) or the workload diagnosis says failed; Running when the Deployment is
available and the cache (if any) is Ready; Degraded when available but the cache is not, the
workload diagnosis found a problem (a new revision that cannot start), or a transient API error
outlived the client's retries (the reconcile is retried with backoff); else Starting (Pending
before the Deployment exists). ``status.replicas`` is the Deployment's observed pod count.
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError

from aimctl.api.v1alpha1 import AUTO_KVCACHE_PREFIX, AIMService, KVCacheStatus, ServiceStatus
from aimctl.client import GVK, ApiError, Client, TransportError
from aimctl.client._recorder import EventRecorder
from aimctl.controller import Request, Result, TerminalError
from aimctl.objects import (
    controller_of,
    find_condition,
    is_being_deleted,
    is_controlled_by,
    meta,
    set_condition,
)
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    CONFIGMAP,
    CONFLICT_RECHECK,
    DEPLOYMENT,
    POD,
    SECRET,
    SERVICE,
    ChildConflict,
    apply_if_changed,
    apply_status_if_changed,
    is_label_value,
    is_transient,
    observed_status,
    report_invalid,
)
from aimctl.reconcilers.kvcache._desired import (
    AUTH_HASH_ANNOTATION,
    auth_secret_name,
    endpoint as cache_endpoint,
    password_hash,
)
from aimctl.reconcilers.service import _desired as desired
from aimctl.reconcilers.service._diagnosis import Finding, diagnose_deployment
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
        error: Exception | None = None
        kv_reason, kv_message, cache, failed = await self._cache(svc, raw)

        existing_cm = await self.client.get(CONFIGMAP, configmap_name(svc.name), ns)
        config: str | None = None
        cache_ready = kv_reason == "KVCacheReady"
        if cache is not None and (cache_ready or existing_cm is not None):
            config = desired.lmcache_config(svc, cache_endpoint(meta(cache)["name"]))

        deploy = await self.client.get(DEPLOYMENT, svc.name, ns)
        cache_name = meta(cache)["name"] if cache is not None and config is not None else None
        auth_hash = await self._auth_hash(cache_name, ns, deploy)
        # With a cache requested, the first rollout waits for it and its password: starting the
        # model unwired and rolling it again seconds later would load the model twice.
        gated = (
            svc.spec.kv_cache is not None
            and (config is None or auth_hash is None)
            and deploy is None
        )
        if gated and config is not None and cache_name is not None:
            kv_reason_pending = "WaitingForKVCacheSecret"
            kv_message_pending = (
                f"waiting for Secret {auth_secret_name(cache_name)}, the password of KV cache "
                f"{cache_name} (created by the cache's controller)"
            )
        else:
            kv_reason_pending = kv_message_pending = ""
        try:
            if config is not None:
                await apply_if_changed(
                    self.client, desired.lmcache_configmap(svc, raw, config), existing_cm
                )
            else:
                # Removal is a change: no cache, no LMCache config (the Deployment stops
                # mounting it in the same reconcile).
                await self._delete_owned(CONFIGMAP, raw, existing_cm)
            if not gated:
                want = desired.deployment(svc, raw, config, cache=cache_name, auth_hash=auth_hash)
                deploy = await apply_if_changed(self.client, want, deploy)
            await apply_if_changed(
                self.client, desired.service(svc, raw), await self.client.get(SERVICE, svc.name, ns)
            )
        except ChildConflict as err:
            error = err
            log.warning("Child name taken", error=str(err))
        except (ApiError, TransportError) as err:
            error = err
            log.warning("Apply failed", error=str(err))

        finding: Finding | None = None
        if deploy is not None and is_label_value(svc.name):
            # The service's pods, from the Pod informer (label-scoped to the operator's
            # managed-by labels, which the pod template carries): no API read.
            pods = await self.client.list(POD, ns, label_selector=desired.pod_selector(svc.name))
            finding = diagnose_deployment(deploy, pods)
        if finding is not None and finding.ok:
            finding = None
        status = self._status(
            svc,
            raw,
            cache,
            deploy,
            kv_reason,
            kv_message,
            failed,
            error,
            finding=finding,
            pending=(kv_reason_pending, kv_message_pending),
        )
        await self._write_status(raw, status, warn=finding.reason if finding else None)
        if isinstance(error, ChildConflict):
            return Result(requeue_after=CONFLICT_RECHECK)
        if error is not None:
            raise error
        if kv_reason == "WaitingForPreviousKVCache":
            return Result(requeue_after=CONFLICT_RECHECK)
        if finding is not None and finding.recheck_after:
            # Pods are not watched by this controller; a diagnosis that changes with time (a
            # grace period, a pod's progress) is looked at again.
            return Result(requeue_after=finding.recheck_after)
        return None

    async def _auth_hash(
        self, cache: str | None, namespace: str, deploy: dict[str, Any] | None
    ) -> str | None:
        """The pod template's ``auth-hash``: ``password_hash`` of the cache's Secret (from the
        informer cache, never the API), or while the Secret is missing the hash the live
        Deployment carries (rotation in progress: roll once, to the new password)."""
        if cache is None:
            return None
        secret = await self.client.get(SECRET, auth_secret_name(cache), namespace)
        digest = password_hash(secret) if secret is not None else None
        if digest is not None:
            return digest
        template = ((deploy or {}).get("spec") or {}).get("template") or {}
        live = ((template.get("metadata") or {}).get("annotations") or {}).get(AUTH_HASH_ANNOTATION)
        return live if isinstance(live, str) else None

    async def _delete_owned(
        self, gvk: GVK, raw: dict[str, Any], child: dict[str, Any] | None
    ) -> None:
        """Delete ``child`` if this service controls it (anything else is not ours to delete)."""
        if child is None or not is_controlled_by(child, raw) or is_being_deleted(child):
            return
        m = meta(child)
        log.info("Deleting", kind=gvk.kind, child=m["name"])
        await self.client.delete(gvk, m["name"], m["namespace"], uid=m["uid"])

    async def _cache(
        self, svc: AIMService, raw: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any] | None, bool]:
        """(KVCacheReady reason, message, the cache object, failed?)"""
        kv = svc.spec.kv_cache
        name = svc.kv_cache_name()
        await self._prune_own_cache(svc, raw, keep=name)
        if kv is None or name is None:
            return "KVCacheNotRequested", "KV cache not requested", None, False
        cache = await self.client.get(AIMKVCACHE, name, svc.namespace)
        if kv.name is None:  # the service's own cache
            waiting = self._previous_cache(svc, raw, cache)
            if waiting is not None:
                return "WaitingForPreviousKVCache", waiting, None, False
            try:
                cache = await apply_if_changed(
                    self.client, desired.auto_cache(svc, raw, name, cache), cache
                )
            except ChildConflict as err:
                return "KVCacheConflict", f"{err}; or use it with spec.kvCache.name", None, True
            except ApiError as err:
                if is_transient(err):
                    raise
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
                f"KV cache {name} is ready at {cache_endpoint(name)}",
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

    @staticmethod
    def _previous_cache(
        svc: AIMService, raw: dict[str, Any], cache: dict[str, Any] | None
    ) -> str | None:
        """Why the service must wait before creating its own cache, or None.

        The cache of an earlier AIMService of the same name (deleted and re-created: a GitOps
        replace, or while the operator was down) is garbage-collected because its owner is gone;
        its finalizer does not count this service as a user (``_users`` of the cache
        reconciler), so the wait ends. Its deletion wakes this service through the watch.
        """
        if cache is None:
            return None
        owner = controller_of(cache)
        name = meta(cache)["name"]
        if owner is not None and owner.get("uid") != meta(raw).get("uid"):
            earlier = owner.get("kind") == "AIMService" and owner.get("name") == svc.name
            if earlier:
                return (
                    f"AIMKVCache {name} belongs to an earlier AIMService {svc.name} and is being "
                    "garbage-collected; a new cache is created once it is gone"
                )
            return None  # someone else's: apply_if_changed reports the conflict
        if is_being_deleted(cache):
            return f"AIMKVCache {name} is being deleted; a new cache is created once it is gone"
        return None

    async def _prune_own_cache(
        self, svc: AIMService, raw: dict[str, Any], keep: str | None
    ) -> None:
        """Let go of the cache this service created (``kvcache-<service>``) once its spec no
        longer asks for it by ``type``: deleted when no longer used at all, released (our
        owner reference removed, the cache kept) when now used by ``name``."""
        own = f"{AUTO_KVCACHE_PREFIX}{svc.name}"
        cache = await self.client.get(AIMKVCACHE, own, svc.namespace)
        if cache is None or not is_controlled_by(cache, raw) or is_being_deleted(cache):
            return
        kv = svc.spec.kv_cache
        if keep == own and kv is not None and kv.name is None:
            return  # still the service's own cache
        if keep == own:
            await self._release(cache, raw)
            self.recorder.event(
                raw,
                "Normal",
                "KVCacheReleased",
                f"AIMKVCache {own} is now used by name; this service no longer owns it",
            )
            return
        await self.client.delete(AIMKVCACHE, own, svc.namespace, uid=meta(cache)["uid"])
        self.recorder.event(
            raw,
            "Normal",
            "KVCacheDeleted",
            f"deleted AIMKVCache {own}: the service no longer uses it",
        )

    async def _release(self, cache: dict[str, Any], raw: dict[str, Any]) -> None:
        """Remove this service's owner reference from ``cache``. Guarded by resourceVersion: a
        concurrent change makes it 409 and the reconcile decides again on fresh data."""
        uid = meta(raw)["uid"]
        refs = [r for r in meta(cache).get("ownerReferences") or [] if r.get("uid") != uid]
        await self.client.patch(
            AIMKVCACHE,
            meta(cache)["name"],
            meta(cache)["namespace"],
            {
                "metadata": {
                    "ownerReferences": refs or None,
                    "resourceVersion": meta(cache)["resourceVersion"],
                }
            },
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
        error: Exception | None,
        *,
        finding: Finding | None = None,
        pending: tuple[str, str] = ("", ""),
    ) -> dict[str, Any]:
        gen = svc.metadata.generation
        old = observed_status(raw).get("conditions")
        dstatus = (deploy or {}).get("status") or {}
        ready_replicas = int(dstatus.get("readyReplicas") or 0)
        wanted = svc.spec.replicas
        available = deploy is not None and ready_replicas >= wanted
        cache_ok = kv_reason in ("KVCacheReady", "KVCacheNotRequested")

        if isinstance(error, ChildConflict):
            summary, reason, message = ServiceStatus.FAILED, "ChildConflict", str(error)
        elif error is not None and not is_transient(error):
            summary, reason, message = ServiceStatus.FAILED, "ApplyFailed", f"Apply failed: {error}"
        elif error is not None:
            # Outlived the client's retries, but may well pass next time: the reconcile is
            # retried with backoff; what runs keeps running.
            summary = ServiceStatus.DEGRADED if available else ServiceStatus.STARTING
            reason, message = "ApplyRetrying", f"retrying after an API error: {error}"
        elif cache_failed:
            summary, reason, message = ServiceStatus.FAILED, kv_reason, kv_message
        elif deploy is None and not cache_ok:
            summary, reason = ServiceStatus.PENDING, kv_reason
            message = f"the model starts once its KV cache is ready: {kv_message}"
        elif deploy is None and pending[0]:
            summary, reason, message = ServiceStatus.PENDING, pending[0], pending[1]
        elif deploy is None:
            summary, reason, message = (
                ServiceStatus.PENDING,
                "Creating",
                "creating the inference Deployment",
            )
        elif finding is not None:
            # Some pods serve (an older revision, or fewer replicas than wanted) while others
            # cannot start: Degraded; none serves: Failed when only a user can fix it.
            if available or ready_replicas > 0:
                summary = ServiceStatus.DEGRADED
            elif finding.failed:
                summary = ServiceStatus.FAILED
            else:
                summary = ServiceStatus.STARTING
            reason, message = finding.reason, finding.message
        elif available and cache_ok:
            summary, reason, message = (
                ServiceStatus.RUNNING,
                "Running",
                f"{ready_replicas}/{wanted} replicas ready",
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
                f"{ready_replicas}/{wanted} replicas ready",
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
            # Observed, not copied from the spec: pods the Deployment runs (all revisions).
            "replicas": int(dstatus.get("replicas") or 0),
            "readyReplicas": ready_replicas,
        }
        if cache is not None:
            cache_name = meta(cache)["name"]
            resolved: dict[str, Any] = {"name": cache_name, "uid": meta(cache).get("uid")}
            if (cache.get("status") or {}).get("endpoint"):
                resolved["endpoint"] = cache_endpoint(cache_name)
            status["resolvedKVCache"] = resolved
        return status

    async def _write_status(
        self, raw: dict[str, Any], status: dict[str, Any], *, warn: str | None = None
    ) -> None:
        """Write ``status`` if it changed; a new Ready reason that is a problem (a child
        conflict, a refused apply, the workload diagnosis ``warn``) is a Warning Event."""
        if not await apply_status_if_changed(self.client, raw, status, _STATUS_KEYS):
            return
        old = observed_status(raw)
        ready = find_condition(status["conditions"], "Ready") or {}
        old_ready = (find_condition(old.get("conditions"), "Ready") or {}).get("reason")
        problem = ready.get("reason") in _CHILD_PROBLEMS or (
            warn is not None and ready.get("reason") == warn
        )
        if problem and ready.get("reason") != old_ready:
            self.recorder.event(raw, "Warning", str(ready["reason"]), str(ready.get("message")))
        old_kv = (find_condition(old.get("conditions"), "KVCacheReady") or {}).get("reason")
        new_kv = find_condition(status["conditions"], "KVCacheReady") or {}
        if new_kv.get("reason") != old_kv and new_kv.get("reason") != "KVCacheNotRequested":
            reason, message = str(new_kv.get("reason")), str(new_kv.get("message"))
            if reason in _BAD:
                self.recorder.event(raw, "Warning", reason, message)
            else:
                self.recorder.event(raw, "Normal", reason, message)


_CHILD_PROBLEMS = frozenset({"ChildConflict", "ApplyFailed"})
_BAD = frozenset({"KVCacheFailed", "KVCacheNotFound", "KVCacheConflict", "KVCacheUpdateRejected"})
