"""The AIMKVCache reconciler: Redis password Secret, NetworkPolicy, StatefulSet and Service;
status and diagnosis.

Each reconcile, for one cache:

1. Read the cache and everything relevant from the informer cache (no API reads).
2. Deleting? Hold the deletion (finalizer ``aim.silogen.ai/kvcache-protection``) while any
   AIMService still uses the cache, with an Event saying which; release it when none does,
   whatever the stored spec (an unparseable one must not hang a namespace deletion). A service
   that asks for its own cache by ``type`` uses only a cache it controls (or an orphan it will
   adopt): the cache of an earlier service of the same name is not held for its successor.
3. The password Secret ``<cache>-auth``: created (POST) with a new password when the cache has
   none, never written again: applying a value over an existing one would change the password
   under a running Redis. Deleting it is how a user rotates the password: a new one is made,
   its hash on the pod template (``aim.silogen.ai/auth-hash``) changes and Redis rolls (the
   services using the cache follow the same hash). The password never leaves the Secret: not
   in logs, Events, status or error text (only its hash does).
4. Converge the children in an order with no unsafe window: the NetworkPolicy before the
   StatefulSet (Redis never runs unfenced), the StatefulSet only once the Secret exists (its
   pod refers to it; without it the pod fails ``CreateContainerConfigError``), each with
   server-side apply writing only what differs (``apply_if_changed``: only objects this
   controller controls; a name held by anything else is ``ChildConflict``).
5. Re-creating the StatefulSet, keeping its pod and PVC (delete with ``propagationPolicy:
   Orphan`` and a uid precondition; the next reconcile creates it anew and the StatefulSet
   controller adopts the pod): when ``storage.size`` grew (the claim template is immutable; the
   bound PVC is expanded first, when its StorageClass allows it), and when the live StatefulSet
   has ``podManagementPolicy: OrderedReady`` (made by an earlier operator version; the field is
   immutable, and ``Parallel`` is what lets a fixed spec replace a pod that never got Ready).
6. Compute the whole status (summary, conditions, diagnosis) and write it only if it changed;
   Events on transitions. Readiness follows the serving pod, so re-creating the StatefulSet
   around it does not flap Ready; an API error that outlived the client's retries is
   Progressing and retried with backoff, never Failed (only a refusal is). A pod finding is
   Failed only when the diagnosis says so (a pull error is retried by the kubelet and is
   Progressing during its grace period), so services using the cache are not failed by a
   registry's passing 429.

In sync, a reconcile makes no API request at all; one whose inputs are at exactly the versions
the last converged reconcile of that cache left behind (the echo of its own writes) does not even
recompute them (``_Settled``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMKVCache, KVCacheStatus
from aimctl.client import AlreadyExists, ApiError, Client, Conflict, TransportError
from aimctl.client._recorder import EventRecorder
from aimctl.controller import Request, Result, TerminalError
from aimctl.objects import (
    controller_of,
    find_condition,
    has_finalizer,
    is_being_deleted,
    labels_of,
    meta,
    set_condition,
)
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    CONFLICT_RECHECK,
    LABEL_MANAGED_BY,
    NETWORKPOLICY,
    POD,
    PVC,
    RESOURCEQUOTA,
    SECRET,
    SERVICE,
    SERVICE_CONTROLLER,
    SERVICES_BY_CACHE,
    STATEFULSET,
    STORAGECLASS,
    ChildConflict,
    apply_if_changed,
    apply_status_if_changed,
    check_ownership,
    is_label_value,
    is_transient,
    observed_status,
    report_invalid,
)
from aimctl.reconcilers.kvcache import _desired as desired
from aimctl.reconcilers.kvcache._desired import SERVICE_LABEL
from aimctl.reconcilers.kvcache._diagnosis import (
    Finding,
    diagnose_pod,
    diagnose_storage,
    pod_is_ready,
)
from aimctl.reconcilers.service._names import uses_by_name

__all__ = ["FINALIZER", "AuthSecretInvalid", "KVCacheReconciler"]

log = structlog.get_logger("aimctl.kvcache")

FINALIZER = "aim.silogen.ai/kvcache-protection"
# The StatefulSet's pod management policy; a live one without the field has the default.
_POLICY = "podManagementPolicy"
_DEFAULT_POLICY = "OrderedReady"


class AuthSecretInvalid(Exception):
    """The cache's password Secret is ours but holds no usable password (its key was removed,
    emptied, or edited to something that is not base64). Never overwritten: deleting it makes a
    new one."""


class KVCacheReconciler:
    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder
        # Per cache, the versions of its inputs as its last converged reconcile left them.
        self._settled: dict[tuple[str, str], _Settled] = {}

    async def reconcile(self, req: Request) -> Result | None:
        key = (req.namespace, req.name)
        raw = await self.client.get(AIMKVCACHE, req.name, req.namespace)
        if raw is None:
            self._settled.pop(key, None)
            return None  # deleted: its children go with it (owner references)
        ns, name = req.namespace, req.name
        services = await self.client.by_index(AIMSERVICE, SERVICES_BY_CACHE, f"{ns}/{name}")
        users = _users(raw, services)
        if is_being_deleted(raw):
            # Before parsing the spec: a finalizer is released whatever the stored spec holds.
            self._settled.pop(key, None)
            await self._finalize(raw, users)
            return None
        sts = await self.client.get(STATEFULSET, desired.statefulset_name(name), ns)
        svc = await self.client.get(SERVICE, desired.service_name(name), ns)
        netpol = await self.client.get(NETWORKPOLICY, desired.network_policy_name(name), ns)
        pvc = await self.client.get(PVC, desired.pvc_name(name), ns)
        pod = await self.client.get(POD, f"{desired.statefulset_name(name)}-0", ns)
        secret = await self.client.get(SECRET, desired.auth_secret_name(name), ns)
        classes = await self.client.list(STORAGECLASS)
        quotas = await self.client.list(RESOURCEQUOTA, ns)
        # Everything below depends on these objects alone (and on the clock, only where a
        # finding asks for a recheck): the same versions as the last converged reconcile left
        # behind mean that reconcile's outcome again, which wrote nothing new (see _Settled).
        observed = _Settled.of(
            (raw, secret, netpol, sts, svc), (pvc, pod, *services, *classes, *quotas)
        )
        if self._settled.get(key) == observed:
            return None
        self._settled.pop(key, None)
        try:
            cache = AIMKVCache.model_validate(raw)
        except ValidationError as err:
            # Stored before a schema change, or written around validation: report, don't crash.
            message = await report_invalid(
                self.client, self.recorder, raw, err, _STATUS_KEYS, last_error=True
            )
            raise TerminalError(message) from err
        current = raw  # the cache as this reconcile leaves it
        if not has_finalizer(raw, FINALIZER):
            current = await self.client.add_finalizer(raw, FINALIZER)

        error: Exception | None = None
        try:
            secret = await self._converge_secret(cache, raw, secret)
            auth_hash = _usable_hash(secret) if secret is not None else None
            if secret is not None and auth_hash is None:
                error = _invalid_secret(ns, desired.auth_secret_name(name))
            # The fence first: Redis never runs without its NetworkPolicy.
            netpol = await apply_if_changed(
                self.client,
                desired.network_policy(cache, raw, [u for u in users if is_label_value(u)]),
                netpol,
            )
            if auth_hash is not None:
                # Only with a usable password: the pod reads it from the Secret at start.
                sts = await self._converge_statefulset(cache, raw, sts, pvc, classes, auth_hash)
            svc = await apply_if_changed(self.client, desired.service(cache, raw), svc)
        except ChildConflict as err:
            error = err
            log.warning("Child name taken", error=str(err))
        except (ApiError, TransportError) as err:
            error = err
            log.warning("Apply failed", error=str(err))

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
            pod=pod,
        )
        pod_finding = diagnose_pod(pod, f"{desired.statefulset_name(name)}-0", now)
        status = self._status(
            cache, raw, sts, svc, pvc, users, storage, pod_finding, pod_is_ready(pod), error
        )
        current = await self._write_status(raw, status) or current
        if isinstance(error, ChildConflict):
            return Result(requeue_after=CONFLICT_RECHECK)
        if error is not None and not isinstance(error, AuthSecretInvalid):
            # (An invalid Secret is ours and watched: its deletion or repair wakes us.)
            raise error
        recheck = [f.recheck_after for f in (storage, pod_finding) if f and f.recheck_after]
        if recheck:
            return Result(requeue_after=min(recheck))
        if error is None and all(c is not None for c in (secret, netpol, sts, svc)):
            # Converged, every child present as written (not one being re-created or deleted).
            self._settled[key] = observed.after((current, secret, netpol, sts, svc))
        return None

    # -- users and deletion ---------------------------------------------------------------------

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
        await self.client.remove_finalizer(raw, FINALIZER)

    # -- children -------------------------------------------------------------------------------

    async def _converge_secret(
        self, cache: AIMKVCache, raw: dict[str, Any], secret: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The cache's password Secret, created when it has none; None while ours is being
        deleted (its deletion event brings the next reconcile, which creates a new one).

        Created with a POST, never applied: a create cannot change an existing password, and
        the operator needs no ``patch`` or ``update`` on Secrets. A name taken by a Secret the
        cache does not control (invisible to the label-scoped cache) is read live once and is
        a :class:`ChildConflict`. An orphan carrying the cache's labels (``--cascade=orphan``)
        is used as it is: its password is still the one Redis and the services hold, and
        re-owning it would need ``patch`` on Secrets."""
        name = desired.auth_secret_name(cache.name)
        # For the ownership check only: metadata, no password.
        want = desired.auth_secret(cache, raw, "")
        if secret is None:
            for _ in range(2):
                try:
                    created = await self.client.create(
                        desired.auth_secret(cache, raw, desired.new_password())
                    )
                except AlreadyExists:
                    found = await self.client.list_live(
                        SECRET, cache.namespace, field_selector=f"metadata.name={name}"
                    )
                    if found:
                        secret = found[0]
                        break
                    continue  # gone again meanwhile: create afresh
                log.info("Created the password Secret", child=name)
                self.recorder.event(
                    raw,
                    "Normal",
                    "PasswordCreated",
                    f"created Secret {name} with a new Redis password",
                    action="Create",
                )
                return created
            else:
                # A write race (transient: retried with backoff), not a refusal.
                raise Conflict(409, "Conflict", f"Secret {name} was deleted as it was created")
        check_ownership(want, secret, self.client.field_manager)
        if is_being_deleted(secret):
            return None
        return secret

    async def _converge_statefulset(
        self,
        cache: AIMKVCache,
        raw: dict[str, Any],
        sts: dict[str, Any] | None,
        pvc: dict[str, Any] | None,
        classes: list[dict[str, Any]],
        auth_hash: str,
    ) -> dict[str, Any] | None:
        """The StatefulSet as applied, or None when it is being re-created (deleted now, or
        still going from an earlier re-creation)."""
        want_size = cache.spec.storage.size
        if sts is None:
            return await apply_if_changed(
                self.client, desired.statefulset(cache, raw, auth_hash=auth_hash), None
            )
        # Ours before anything else touches it: re-creation deletes it.
        check_ownership(
            desired.statefulset(cache, raw, auth_hash=auth_hash), sts, self.client.field_manager
        )
        if is_being_deleted(sts):
            return None  # our orphaning delete in flight: its deletion event re-creates it
        templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or [{}]
        sts_size = (
            ((templates[0].get("spec") or {}).get("resources") or {})
            .get("requests", {})
            .get("storage")
        )
        keep_size = sts_size or want_size
        if sts_size and quantity.compare(sts_size, want_size) < 0:
            if await self._grow(cache, raw, sts, pvc, classes, sts_size):
                return None
            # Keep the live (immutable) claim template until the claim has grown.
            keep_size = sts_size
        want = desired.statefulset(cache, raw, storage_size=keep_size, auth_hash=auth_hash)
        have_policy = (sts.get("spec") or {}).get(_POLICY) or _DEFAULT_POLICY
        if have_policy != want["spec"][_POLICY]:
            # Immutable: an apply would be refused (422). Made by an earlier operator version.
            await self._recreate_statefulset(
                raw,
                sts,
                f"podManagementPolicy {want['spec'][_POLICY]} (was {have_policy}), so a fixed "
                "spec replaces a pod that is not Ready",
            )
            return None
        return await apply_if_changed(self.client, want, sts)

    async def _recreate_statefulset(
        self, raw: dict[str, Any], sts: dict[str, Any], why: str
    ) -> None:
        """Delete the StatefulSet, orphaning its pod, PVC and revisions, for the next reconcile
        to create it with fields the server does not let us change. The uid precondition
        deletes only the object we judged (never a re-created one of the same name); the new
        StatefulSet adopts the orphans by its selector, and a pod whose template did not change
        keeps running (same controller-revision-hash)."""
        m = meta(sts)
        await self.client.delete(
            STATEFULSET,
            m["name"],
            m["namespace"],
            propagation_policy="Orphan",
            uid=m["uid"],
        )
        self.recorder.event(
            raw,
            "Normal",
            "StatefulSetRecreated",
            f"re-creating StatefulSet {m['name']} with {why}; its pod and PVC are kept",
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
        await self._recreate_statefulset(raw, sts, f"storage {want} (was {sts_size})")
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
        pod_ready: bool,
        error: Exception | None,
    ) -> dict[str, Any]:
        name = cache.name
        gen = cache.metadata.generation
        old = observed_status(raw).get("conditions")
        sts_status = (sts or {}).get("status") or {}
        # The serving pod is the truth: while the StatefulSet is re-created around it (storage
        # growth) or its status lags, a Ready pod still serves.
        ready_replicas = max(int(sts_status.get("readyReplicas") or 0), int(pod_ready))
        replicas = int(((sts or {}).get("spec") or {}).get("replicas") or 1)
        endpoint = desired.endpoint(name)
        serving = svc is not None and ready_replicas >= 1

        if isinstance(error, ChildConflict):
            summary, reason, message = KVCacheStatus.FAILED, "ChildConflict", str(error)
        elif isinstance(error, AuthSecretInvalid):
            summary, reason, message = KVCacheStatus.FAILED, "AuthSecretInvalid", str(error)
        elif error is not None and not is_transient(error):
            summary, reason, message = KVCacheStatus.FAILED, "ApplyFailed", f"Apply failed: {error}"
        elif error is not None:
            # Outlived the client's retries but may pass next time (retried with backoff): not
            # Failed, and a serving cache stays Ready so its services are not degraded for it.
            summary = KVCacheStatus.READY if serving else KVCacheStatus.PROGRESSING
            reason, message = "ApplyRetrying", f"retrying after an API error: {error}"
        elif pod is not None and pod.failed:
            summary, reason, message = KVCacheStatus.FAILED, pod.reason, pod.message
        elif storage.failed:
            summary, reason, message = KVCacheStatus.FAILED, storage.reason, storage.message
        elif serving:
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
        elif not storage.ok and not (storage.defer_to_pod and pod is not None):
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
        p_reason, p_message = reason, message
        if summary == KVCacheStatus.READY and (sts is None or error is not None):
            # Ready and still converging: re-creating the StatefulSet, or retrying a write.
            progressing = True
            if error is None:
                p_reason = "RecreatingStatefulSet"
                p_message = f"re-creating StatefulSet {desired.statefulset_name(name)}"
        conds = set_condition(
            conds,
            "Progressing",
            "True" if progressing else "False",
            p_reason,
            p_message,
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

    async def _write_status(
        self, raw: dict[str, Any], status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The cache as written, or None when its status was already ``status``."""
        written = await apply_status_if_changed(self.client, raw, status, _STATUS_KEYS)
        if written is not None:
            self._events(raw, observed_status(raw), status)
        return written

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


def _users(raw: Mapping[str, Any], services: list[dict[str, Any]]) -> list[str]:
    """Names of the AIMServices using this cache, of those the index names for it."""
    return sorted(
        meta(s)["name"]
        for s in services
        if not is_being_deleted(s) and (uses_by_name(s) or _owned_by(raw, s))
    )


def _version(obj: Mapping[str, Any] | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")


@dataclass(frozen=True, slots=True)
class _Settled:
    """The resourceVersions of everything one reconcile reads: the cache, its four children and
    the rest (claim, pod, the services using it, StorageClasses, quotas).

    Why: every write of a converged reconcile comes back as a watch event and asks for another
    reconcile, which reads exactly what that one wrote, computes the same desired state and
    writes nothing (the in-sync property the tests pin on fresh reconcilers). In a 1000-cache
    converge that second reconcile per cache was ~4% of the operator's CPU (docs/benchmarks.md).
    A reconcile whose inputs are at the versions the last converged one left (its writes'
    answers, and what it read) is that no-op and is skipped. Any other version (anyone's
    write, a deletion, a relist that skipped ours) runs the whole reconcile. resourceVersions
    are compared only for equality (opaque, per API conventions)."""

    ours: tuple[str | None, ...]  # the cache, its Secret, NetworkPolicy, StatefulSet, Service
    rest: tuple[str | None, ...]  # its claim and pod, the services using it, classes, quotas

    @classmethod
    def of(
        cls, ours: tuple[Mapping[str, Any] | None, ...], rest: tuple[Mapping[str, Any] | None, ...]
    ) -> _Settled:
        return cls(_versions(ours), _versions(rest))

    def after(self, ours: tuple[Mapping[str, Any] | None, ...]) -> _Settled:
        """These versions with the cache and its children as the reconcile wrote them."""
        return _Settled(_versions(ours), self.rest)


def _versions(objs: tuple[Mapping[str, Any] | None, ...]) -> tuple[str | None, ...]:
    return tuple(_version(o) for o in objs)


def _owned_by(cache: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    """Whether a service asking for its own cache by ``type`` uses this one: it controls it, or
    it is an orphan the service will adopt (created for a service of its name). The cache of an
    earlier service of the same name (another owner UID) is not its successor's: holding it for
    the successor would deadlock, as the successor waits for it to go."""
    owner = controller_of(cache)
    if owner is not None:
        return bool(owner.get("uid") == meta(service).get("uid"))
    labels = labels_of(cache)
    return labels.get(LABEL_MANAGED_BY) == SERVICE_CONTROLLER and labels.get(SERVICE_LABEL) == meta(
        service
    ).get("name")


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
        "ResizeFailed",
        "Unschedulable",
    }
)


def _usable_hash(secret: Mapping[str, Any]) -> str | None:
    """``password_hash`` of a Secret holding a non-empty password, else None: an empty one
    would be ``requirepass ""``, which to Redis means no password at all."""
    data = secret.get("data") or {}
    if not isinstance(data, Mapping) or not data.get(desired.AUTH_SECRET_KEY):
        return None
    return desired.password_hash(secret)


def _invalid_secret(namespace: str, name: str) -> AuthSecretInvalid:
    # Names the Secret and the key, never a value.
    return AuthSecretInvalid(
        f"Secret {name} has no usable {desired.AUTH_SECRET_KEY!r} key (missing, empty or not "
        "base64); the operator never overwrites it: delete it (kubectl delete secret -n "
        f"{namespace} {name}) and a new password is generated, with which Redis and the "
        "services using it restart"
    )
