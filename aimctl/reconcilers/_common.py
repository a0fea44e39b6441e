"""Names, labels and kinds shared by the AIM reconcilers (``docs/architecture.md``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from aimctl.api import quantity
from aimctl.api.v1alpha1 import GROUP, VERSION
from aimctl.client import (
    GVK,
    AlreadyExists,
    ApiError,
    Client,
    Conflict,
    EventRecorder,
    ServerError,
    TooManyRequests,
    TransportError,
)
from aimctl.objects import controller_of, diff_paths, is_being_deleted, labels_of, set_condition

__all__ = [
    "AIMKVCACHE",
    "AIMSERVICE",
    "APPLIED_HASH",
    "LABEL_SCOPED",
    "SECRET",
    "SERVICES_BY_CACHE",
    "CONFIGMAP",
    "DEPLOYMENT",
    "KVCACHE_CONTROLLER",
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "LABEL_NAME",
    "NETWORKPOLICY",
    "POD",
    "PVC",
    "RESOURCEQUOTA",
    "SERVICE",
    "SERVICE_CONTROLLER",
    "STATEFULSET",
    "STORAGECLASS",
    "CONFLICT_RECHECK",
    "ChildConflict",
    "applied_hash",
    "apply_if_changed",
    "check_ownership",
    "create_only",
    "env_vars",
    "is_label_value",
    "is_transient",
    "with_applied_hash",
    "apply_status_if_changed",
    "observed_status",
    "report_invalid",
    "leaf_equal",
]

log = structlog.get_logger("aimctl.reconcilers")

KVCACHE_CONTROLLER = "aimkvcache-controller"
SERVICE_CONTROLLER = "aimservice-controller"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

AIMKVCACHE = GVK(GROUP, VERSION, "AIMKVCache")
AIMSERVICE = GVK(GROUP, VERSION, "AIMService")
STATEFULSET = GVK("apps", "v1", "StatefulSet")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
SERVICE = GVK("", "v1", "Service")
CONFIGMAP = GVK("", "v1", "ConfigMap")
PVC = GVK("", "v1", "PersistentVolumeClaim")
POD = GVK("", "v1", "Pod")
RESOURCEQUOTA = GVK("", "v1", "ResourceQuota")
STORAGECLASS = GVK("storage.k8s.io", "v1", "StorageClass")
NETWORKPOLICY = GVK("networking.k8s.io", "v1", "NetworkPolicy")
SECRET = GVK("", "v1", "Secret")

# Index of AIMServices by the cache they use, "<namespace>/<cache>" (``_setup``): the users of a
# cache in one lookup instead of a scan of the namespace's services.
SERVICES_BY_CACHE = "aim.silogen.ai/kvcache"


def leaf_equal(a: Any, b: Any) -> bool:
    """Equality for ``is_subset`` that treats equal Kubernetes quantities as equal strings."""
    if a == b:
        return True
    if (
        isinstance(a, str)
        and isinstance(b, str)
        and quantity.is_quantity(a)
        and quantity.is_quantity(b)
    ):
        return quantity.compare(a, b) == 0
    return False


# How often a reconciler re-checks a child name held by another owner (it gets no event when
# that owner lets go, so it polls instead of backing off towards 1000 s).
CONFLICT_RECHECK = 60.0

# Kinds the manager caches only when they carry our managed-by label (``_setup``): a cache miss
# for them does not mean "no such object", only "none of ours".
LABEL_SCOPED: frozenset[GVK] = frozenset(
    {POD, PVC, STATEFULSET, SERVICE, NETWORKPOLICY, DEPLOYMENT, CONFIGMAP, SECRET}
)
# The hash of the last applied desired object, kept on the child (like kubectl's
# last-applied-configuration): a different hash means a field may have left the desired state,
# and only an apply removes it (see ``apply_if_changed``).
APPLIED_HASH = "aim.silogen.ai/applied-hash"
# Labels that tie a child to one owner: an object without a controller owner reference is
# adopted only when it carries every one of these that the desired object carries (it was
# created by this controller for an owner of the same name, then orphaned).
_IDENTITY_LABELS = (LABEL_MANAGED_BY, LABEL_INSTANCE, "aim.silogen.ai/service")


class ChildConflict(Exception):
    """The child's name is taken by an object this controller does not control; nothing was
    written to it."""


def applied_hash(want: Mapping[str, Any]) -> str:
    """A stable digest of a desired object (keys sorted, without the hash annotation itself)."""
    body = orjson.dumps(want, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()[:16]


def with_applied_hash(want: dict[str, Any]) -> dict[str, Any]:
    """``want`` with :data:`APPLIED_HASH` set in its annotations."""
    digest = applied_hash(want)
    m = dict(want["metadata"])
    m["annotations"] = {**(m.get("annotations") or {}), APPLIED_HASH: digest}
    return {**want, "metadata": m}


def check_ownership(want: Mapping[str, Any], have: Mapping[str, Any], manager: str) -> bool:
    """Whether ``have`` (the live object under ``want``'s name) may be written.

    True when its controller owner reference is ``want``'s, and for an orphan carrying every
    identity label of ``want`` (created by ``manager`` for an owner of this name, then orphaned
    by ``--cascade=orphan``): that one is adopted. Anything else raises :class:`ChildConflict`
    naming the object and its owner; it is never written, adopted or garbage-collected.
    """
    ours = (want["metadata"].get("ownerReferences") or [{}])[0]
    theirs = controller_of(have)
    kind, name = want["kind"], want["metadata"]["name"]
    if theirs is not None:
        if theirs.get("uid") == ours.get("uid"):
            return True
        raise ChildConflict(
            f"{kind} {name} already exists and belongs to {theirs.get('kind')} "
            f"{theirs.get('name')}; rename this {ours.get('kind')} or delete that {kind}"
        )
    want_labels = want["metadata"].get("labels") or {}
    have_labels = labels_of(have)
    if LABEL_MANAGED_BY in want_labels and all(
        have_labels.get(k) == want_labels[k] for k in _IDENTITY_LABELS if k in want_labels
    ):
        log.info("Adopting an orphan", kind=kind, child=name)
        return True
    raise ChildConflict(
        f"{kind} {name} already exists and is not managed by {manager} (it has no controller "
        f"owner reference); rename this {ours.get('kind')}, or delete that {kind} if it is not "
        "needed"
    )


async def apply_if_changed(
    client: Client, want: dict[str, Any], have: dict[str, Any] | None
) -> dict[str, Any]:
    """Converge one child: server-side apply ``want`` unless ``have`` already matches it.

    - Ownership: only an object this controller controls is written (:func:`check_ownership`).
      A cache miss (an unlabelled object is invisible to a label-scoped cache, and a cache may
      lag) creates with :func:`create_only`: the server refuses it when the name is taken, and
      only then is the object read live (a one-item list) and judged. Neither creating nor a
      converged reconcile costs a read.
    - Drift both ways: ``want`` is applied when a field of it is missing or different on the
      live object (someone changed it) *or* when its hash differs from the one stored at the
      last apply (the desired state changed, also while the operator was down). Server-side
      apply then removes the fields this field manager applied before and no longer does: a
      dropped env var, limit or volume leaves the child.
    - Forced: the fields are ours on an object we control (an HPA-style co-owner of our fields
      would be fought; none exists for these children).

    The fields that differ are logged, so drift corrections say what drifted. Returns the
    object as applied (or ``have`` when nothing was written).
    """
    m = want["metadata"]
    want = with_applied_hash(want)
    if have is None:
        # Not in the cache (unlabelled objects are invisible to it, and it may lag): create
        # only if the name is free; a taken name is read live once and judged below.
        log.info("Creating", kind=want["kind"], child=m["name"])
        try:
            created: dict[str, Any] = await client.apply(create_only(want), force=True)
            return created
        except Conflict:
            # A one-item list, not a GET: the operator's role lists these kinds already and
            # needs no ``get`` verb for this rare path (least privilege, manifests/rbac).
            found = await client.list_live(
                GVK.of(want), m.get("namespace"), field_selector=f"metadata.name={m['name']}"
            )
            if not found:
                raise  # gone again meanwhile: the retry decides afresh
            have = found[0]
    check_ownership(want, have, client.field_manager)
    if is_being_deleted(have):
        # Ours, going away (an orphaning delete): writing to it could only fail; its deletion
        # wakes the owner, which then creates it anew.
        return have
    diff = diff_paths(want, have, leaf_equal=leaf_equal)
    if not diff:
        return have
    log.info("Correcting drift", kind=want["kind"], child=m["name"], fields=diff)
    applied: dict[str, Any] = await client.apply(want, force=True)
    return applied


# A resourceVersion no live object carries: the server refuses the apply with 409 when the
# object exists (its resourceVersion differs) and ignores it when the apply creates the object.
# kube-apiserver genericregistry.Store.Update: an update whose object carries a resourceVersion
# must match the stored one, else Conflict; on the create-on-update path the etcd3 store's
# PrepareObjectForStorage clears it (k8s.io/apiserver pkg/registry/generic/registry/store.go,
# pkg/storage/etcd3/store.go). Pinned by test_create_only_apply_* on the real apiserver.
_NO_SUCH_VERSION = "1"


def create_only(want: Mapping[str, Any]) -> dict[str, Any]:
    """``want`` as a server-side apply that creates the object or fails with ``Conflict``
    if any object of that name exists, so nothing someone else created is ever taken over by
    the first apply (a plain apply would merge into it and add our owner reference)."""
    return {**want, "metadata": {**want["metadata"], "resourceVersion": _NO_SUCH_VERSION}}


def is_transient(err: BaseException) -> bool:
    """An API failure worth retrying with backoff and reporting as progress, not as Failed:
    no answer, throttling, a server error or a write race. (The client already retried the
    idempotent ones; what reaches a reconciler outlived those retries.)"""
    if isinstance(err, TransportError | ServerError | TooManyRequests | Conflict):
        return not isinstance(err, AlreadyExists)
    return False


def is_label_value(value: str) -> bool:
    """Whether ``value`` is a valid label value (<= 63 characters, alphanumeric at both ends,
    ``-_.`` inside). Admission refuses AIMService names that are not; objects stored before
    that rule existed are left out of label selectors rather than breaking them."""
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def env_vars(env: list[Any] | None) -> list[dict[str, Any]]:
    """Env vars as the server stores them: ``value: ""`` is omitted (``EnvVar.Value`` is a plain
    string with ``omitempty``), so sending it would read back as drift forever."""
    out = []
    for e in env or ():
        var = e.model_dump(by_alias=True, exclude_none=True, mode="json")
        if var.get("value") == "":
            del var["value"]
        out.append(var)
    return out


def observed_status(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The object's status, or ``{}`` when it has none or holds something that is not an object
    (stored before a schema change): reconcilers must not crash on what they read."""
    status = raw.get("status")
    return status if isinstance(status, dict) else {}


async def apply_status_if_changed(
    client: Client, raw: dict[str, Any], status: dict[str, Any], owned: Collection[str]
) -> dict[str, Any] | None:
    """Server-side apply ``status`` to ``raw``'s status subresource unless the ``owned`` keys of
    the observed status already equal it. Returns the object as written, or None when it did
    not write.

    ``status`` is the whole status this controller owns: a key it leaves out (``lastError`` once
    the error is gone) is removed by the apply. Keys outside ``owned`` belong to someone else and
    are neither compared nor touched.
    """
    stored = raw.get("status")
    old = observed_status(raw)
    if status == {k: old[k] for k in old if k in owned}:
        return None
    m = raw["metadata"]
    if stored is not None and (
        stored is not old or not isinstance(old.get("conditions", []), list)
    ):
        # Garbage stored before a schema change (a string status, a string conditions list):
        # server-side apply cannot merge into it, a merge patch replaces it.
        return await client.patch(
            GVK.of(raw), m["name"], m["namespace"], {"status": status}, subresource="status"
        )
    return await client.apply_status(
        {
            "apiVersion": raw["apiVersion"],
            "kind": raw["kind"],
            "metadata": {"name": m["name"], "namespace": m["namespace"]},
            "status": status,
        },
        force=True,  # the owned status keys are this controller's alone
    )


async def report_invalid(
    client: Client,
    recorder: EventRecorder,
    raw: dict[str, Any],
    err: ValidationError,
    owned: Collection[str],
    *,
    last_error: bool,
) -> str:
    """Report an object the models reject (stored before a schema change, or written around
    validation): status ``Failed``, ``Ready=False/InvalidSpec`` with the first errors, and a
    Warning Event when the report is new. Returns the message. Never raises for an unwritable
    status: the Event is the report then."""
    m = raw.get("metadata") or {}
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]
    )
    kind = str(raw.get("kind", "")).lower()
    if any("choose another name" in e["msg"] for e in err.errors()):
        # Stored before the name rules; a name cannot be edited, only re-created.
        fix = f"delete it and create it again under a valid name (kubectl get {kind} -o yaml)"
    else:
        fix = f"fix it with kubectl edit {kind} -n {m.get('namespace')} {m.get('name')}"
    message = f"invalid spec: {problems}; {fix}"
    generation = m.get("generation") if isinstance(m.get("generation"), int) else None
    conds = set_condition(
        observed_status(raw).get("conditions"),
        "Ready",
        "False",
        "InvalidSpec",
        message,
        observed_generation=generation,
    )
    status: dict[str, Any] = {"status": "Failed", "conditions": conds}
    if generation is not None:
        status["observedGeneration"] = generation
    if last_error:
        status["lastError"] = message
    old = observed_status(raw)
    if status == {k: old[k] for k in old if k in owned}:
        return message
    try:
        # A merge patch, not an apply: the server cannot build the typed object that server-side
        # apply needs when the stored spec itself is garbage.
        await client.patch(
            GVK.of(raw), m["name"], m["namespace"], {"status": status}, subresource="status"
        )
        recorder.event(raw, "Warning", "InvalidSpec", message)
    except ApiError as apierr:
        log.warning("Could not write the status of an invalid object", error=str(apierr))
        recorder.event(raw, "Warning", "InvalidSpec", message)
    return message
