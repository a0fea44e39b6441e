"""The fake API server: the objects, their resourceVersions and the write rules.

Owns the state one :class:`~aimctl.client.testing.FakeClient` and its ``with_field_manager``
twins share. Synchronous on purpose: each call is atomic under asyncio, as one request is at a
real server. The rules (generation, status subresource, deletion, preconditions) are in the
package docstring; ``_merge`` does the patch and apply arithmetic.
"""

from __future__ import annotations

import builtins
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aimctl.client._errors import AlreadyExists, BadRequest, Conflict, Invalid, NotFound
from aimctl.client._types import GVK, Object
from aimctl.client.testing._merge import (
    Path,
    apply_merge,
    field_set,
    get_path,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

# The fake stands in for the informer cache, so it hands out the cache's exact read-only objects
# and matches selectors with the cache's own code (test support only: the client proper never
# imports informers).
from aimctl.informers import (
    NAMESPACE_INDEX,
    IndexFunc,
    freeze,
    index_by_namespace,
    thaw,
    to_selector,
)

__all__ = ["CLUSTER_SCOPED_KINDS", "KINDS_WITHOUT_STATUS", "Action", "FakeServer"]

_Key = tuple[GVK, str, str]  # (kind, namespace or "", name)


def _kinds(*names: str) -> frozenset[GVK]:
    """``"apps/v1/StatefulSet"``, ``"v1/Pod"`` -> GVKs."""
    return frozenset(GVK.from_api_version(*n.rsplit("/", 1)) for n in names)


_RBAC = "rbac.authorization.k8s.io/v1"
CLUSTER_SCOPED_KINDS = _kinds(
    *("v1/Namespace", "v1/Node", "v1/PersistentVolume", "storage.k8s.io/v1/StorageClass"),
    *(f"{_RBAC}/ClusterRole", f"{_RBAC}/ClusterRoleBinding", "scheduling.k8s.io/v1/PriorityClass"),
    *("apiextensions.k8s.io/v1/CustomResourceDefinition", "networking.k8s.io/v1/IngressClass"),
)
"""Kinds the fake treats as cluster-scoped (matched on group and kind; extend with ``|``)."""

KINDS_WITHOUT_STATUS = _kinds(
    *("v1/ConfigMap", "v1/Secret", "v1/ServiceAccount", "v1/Endpoints", "v1/Event"),
    *("v1/LimitRange", "v1/PodTemplate", "events.k8s.io/v1/Event", "apps/v1/ControllerRevision"),
    *("coordination.k8s.io/v1/Lease", "discovery.k8s.io/v1/EndpointSlice", f"{_RBAC}/Role"),
    *(f"{_RBAC}/RoleBinding", f"{_RBAC}/ClusterRole", f"{_RBAC}/ClusterRoleBinding"),
    *("storage.k8s.io/v1/StorageClass", "scheduling.k8s.io/v1/PriorityClass"),
    "networking.k8s.io/v1/IngressClass",
)
"""Built-in kinds without a status subresource; every other kind has one (a CRD without
``subresources.status`` must be added: ``KINDS_WITHOUT_STATUS | {gvk}``)."""

# Set by the server only: a write cannot change them (the apiserver restores them on update).
_SYSTEM = (
    *("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"),
    *("generation", "resourceVersion", "managedFields"),
)


class Action(NamedTuple):
    """One write the fake server received (rejected ones included). ``verb`` is the client
    method: create, apply, apply_status, patch, patch_status, update, update_status, delete."""

    verb: str
    gvk: GVK
    namespace: str
    name: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value


def _conflict(message: str) -> Conflict:
    return Conflict(409, "Conflict", message)


def _dotted(path: Path) -> str:
    return "".join(f"[{s[0]}={s[1]}]" if isinstance(s, tuple) else f".{s}" for s in path)


class FakeServer:
    """Objects by (GVK, namespace, name), frozen; every method is one request."""

    def __init__(
        self,
        cluster_scoped: Iterable[GVK],
        without_status: Iterable[GVK],
    ) -> None:
        self.objects: dict[_Key, Object] = {}  # frozen, as the informer store holds them
        # (object, field manager, "" or "status") -> the paths that manager applied last
        self.applied: dict[tuple[_Key, str, str], set[Path]] = {}
        self.actions: list[Action] = []
        self.indexes: dict[GVK, dict[str, IndexFunc]] = {}
        self._cluster = {(g.group, g.kind) for g in cluster_scoped}
        self._no_status = {(g.group, g.kind) for g in without_status}
        self._rv = 0

    def has_status(self, gvk: GVK) -> bool:
        return (gvk.group, gvk.kind) not in self._no_status

    def key(self, obj: Mapping[str, Any]) -> _Key:
        """Raises ValueError (as the real client does) for a namespaced object without a
        namespace; a cluster-scoped object's namespace is dropped, as the server does."""
        gvk = GVK.of(obj)
        m = obj.get("metadata") or {}
        if not m.get("name"):
            raise Invalid(422, "Invalid", f"{gvk.kind}: metadata.name: Required value")
        if (gvk.group, gvk.kind) in self._cluster:
            return gvk, "", str(m["name"])
        if not m.get("namespace"):
            raise ValueError(f"{gvk.kind} {m['name']} needs a namespace")
        return gvk, str(m["namespace"]), str(m["name"])

    # -- reads ----------------------------------------------------------------------------------

    def get(self, gvk: GVK, name: str, namespace: str) -> Object | None:
        return self.objects.get((gvk, namespace, name))

    def list(
        self,
        gvk: GVK,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None = None,
    ) -> builtins.list[Object]:
        """Sorted by namespace and name, as the server lists."""
        labels = to_selector(label_selector)
        fields = _field_matcher(field_selector)
        return [
            obj
            for (g, ns, _), obj in sorted(self.objects.items(), key=lambda kv: kv[0][1:])
            if g == gvk
            and (namespace is None or ns == namespace)
            and (labels is None or labels.matches(obj["metadata"].get("labels")))
            and fields(obj)
        ]

    def by_index(self, gvk: GVK, index: str, value: str) -> builtins.list[Object]:
        indexes = {NAMESPACE_INDEX: index_by_namespace, **self.indexes.get(gvk, {})}
        if index not in indexes:
            raise KeyError(f"no index {index!r} on {gvk.kind}; known: {sorted(indexes)}")
        return [o for o in self.list(gvk, None, None) if value in indexes[index](o)]

    # -- writes ---------------------------------------------------------------------------------

    def seed(self, obj: Mapping[str, Any]) -> None:
        """Store ``obj`` as given (status included), filling in what the server sets."""
        key = self.key(obj)
        new = thaw(obj)
        m = new.setdefault("metadata", {})
        if m.get("deletionTimestamp") and not m.get("finalizers"):
            raise ValueError(f"{key[2]}: a deletionTimestamp without finalizers")
        old = (self.objects.get(key) or {}).get("metadata") or {}
        m.setdefault("uid", old.get("uid") or str(uuid.uuid4()))
        m.setdefault("creationTimestamp", old.get("creationTimestamp") or _now())
        m.setdefault("generation", old.get("generation") or 1)
        _put(m, "namespace", key[1] or None)
        m["resourceVersion"] = self._next_rv()
        self.objects[key] = freeze(new)

    def create(self, obj: Mapping[str, Any]) -> Object:
        m = obj.get("metadata") or {}
        if not m.get("name") and m.get("generateName"):
            obj = {**obj, "metadata": {**m, "name": m["generateName"] + secrets.token_hex(3)[:5]}}
        key = self.key(obj)
        self._log("create", key)
        if m.get("resourceVersion"):
            raise BadRequest(400, "BadRequest", "resourceVersion should not be set on create")
        if key in self.objects:
            raise AlreadyExists(409, "AlreadyExists", f'{key[0].kind} "{key[2]}" already exists')
        new = thaw(obj)
        if self.has_status(key[0]):
            new.pop("status", None)  # create cannot set status
        return self._insert(key, new)

    def update(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> Object:
        key = self.key(obj)
        self._log("update_status" if subresource else "update", key)
        return self._commit(key, self._existing(key, subresource), thaw(obj), subresource)

    def patch(
        self,
        gvk: GVK,
        name: str,
        namespace: str,
        patch: Any,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> Object:
        key = (gvk, namespace, name)
        self._log("patch_status" if subresource else "patch", key)
        old = self._existing(key, subresource)
        if patch_type == "json":
            new = json_patch(thaw(old), patch)
        elif patch_type == "strategic":
            new = strategic_merge_patch(thaw(old), patch)
        else:
            new = merge_patch(thaw(old), patch)
        return self._commit(key, old, new, subresource)

    def apply(self, obj: Mapping[str, Any], manager: str, force: bool, status: bool) -> Object:
        key = self.key(obj)
        self._log("apply_status" if status else "apply", key)
        subresource = "status" if status else None
        body = {k: v for k, v in thaw(obj).items() if k not in ("apiVersion", "kind")}
        meta = body.get("metadata") or {}
        want_rv = meta.get("resourceVersion")
        for f in (*_SYSTEM, "name", "namespace"):
            meta.pop(f, None)
        if not meta:
            body.pop("metadata", None)
        if status:
            body = {"status": body["status"]} if "status" in body else {}
        elif self.has_status(key[0]):
            body.pop("status", None)
        fields = field_set(body)
        sub = subresource or ""
        old = self.objects.get(key)
        if old is None:
            if status:
                self._existing(key, subresource)  # raises NotFound
            new = self._insert(key, {"apiVersion": obj["apiVersion"], "kind": obj["kind"], **body})
            self.applied[key, manager, sub] = fields
            return new
        others = {
            mgr: owned
            for (k, mgr, s), owned in self.applied.items()
            if k == key and s == sub and mgr != manager
        }
        clashes = {
            p: mgr
            for mgr, owned in others.items()
            for p in fields & owned
            if p and not isinstance(p[-1], tuple) and get_path(old, p) != get_path(body, p)
        }
        if clashes and not force:
            found = "; ".join(f'conflict with "{m}": {_dotted(p)}' for p, m in clashes.items())
            raise _conflict(f"Apply failed with {len(clashes)} conflict(s): {found}")
        for owned in others.values():
            owned -= clashes.keys()  # forced: the fields move to this manager
        stale = {
            p
            for p in self.applied.get((key, manager, sub), set()) - fields
            if not any(p in owned for owned in others.values())
        }
        merged = apply_merge(thaw(old), body, stale)
        if want_rv:
            merged["metadata"]["resourceVersion"] = want_rv
        result = self._commit(key, old, merged, subresource)
        if key in self.objects:
            self.applied[key, manager, sub] = fields
        return result

    def delete(
        self,
        gvk: GVK,
        name: str,
        namespace: str,
        *,
        propagation_policy: str | None = None,  # no garbage collector: nothing to propagate
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> bool:
        key = (gvk, namespace, name)
        self._log("delete", key)
        old = self.objects.get(key)
        if old is None:
            return False
        m = old["metadata"]
        for field, want in (("uid", uid), ("resourceVersion", resource_version)):
            if want and want != m.get(field):
                raise _conflict(
                    f"Precondition failed: {field} {want}, the object's: {m.get(field)}"
                )
        if not m.get("finalizers"):
            self._remove(key)
        elif not m.get("deletionTimestamp"):
            # kubernetes: apiserver/pkg/registry/generic/registry/store.go markAsDeleting
            # bumps the generation when deletion starts.
            new = thaw(old)
            new["metadata"].update(
                deletionTimestamp=_now(),
                deletionGracePeriodSeconds=0,
                generation=(m.get("generation") or 0) + 1,
                resourceVersion=self._next_rv(),
            )
            self.objects[key] = freeze(new)
        return True

    # -- the write path -------------------------------------------------------------------------

    def _commit(
        self, key: _Key, old: Object, new: dict[str, Any], subresource: str | None
    ) -> Object:
        """Store ``new`` in place of ``old`` under the server's rules; the stored result."""
        old_m = old["metadata"]
        want_rv = (new.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old_m["resourceVersion"]:
            raise _conflict(
                f'Operation cannot be fulfilled on {key[0].kind} "{key[2]}": the object '
                "has been modified; please apply your changes to the latest version and try again"
            )
        has_status = self.has_status(key[0])
        out: dict[str, Any]
        if subresource:  # only the status changes
            out = thaw(old)
            _put(out, "status", new.get("status"))
        else:
            out = new
            if has_status:
                _put(out, "status", old.get("status"))
        m = out.setdefault("metadata", {})
        for f in (*_SYSTEM, "name", "namespace"):
            _put(m, f, old_m.get(f))
        added = set(m.get("finalizers") or ()) - set(old_m.get("finalizers") or ())
        if old_m.get("deletionTimestamp") and added:
            msg = "metadata.finalizers: Forbidden: no new finalizers can be added while deleting"
            raise Invalid(422, "Invalid", msg)
        if out == old:
            return out  # a no-op write keeps its resourceVersion, as on the server
        if _spec(out, has_status) != _spec(old, has_status):
            m["generation"] = (old_m.get("generation") or 0) + 1
        m["resourceVersion"] = self._next_rv()
        if m.get("deletionTimestamp") and not m.get("finalizers"):
            self._remove(key)  # the last finalizer is gone
            return out
        self.objects[key] = freeze(out)
        return out

    def _insert(self, key: _Key, new: dict[str, Any]) -> Object:
        m = new.setdefault("metadata", {})
        for f in _SYSTEM:
            m.pop(f, None)
        m["name"] = key[2]
        _put(m, "namespace", key[1] or None)
        m.update(
            uid=str(uuid.uuid4()),
            creationTimestamp=_now(),
            generation=1,
            resourceVersion=self._next_rv(),
        )
        self.objects[key] = freeze(new)
        return new

    def _existing(self, key: _Key, subresource: str | None) -> Object:
        gvk, _, name = key
        if subresource not in (None, "status") or (subresource and not self.has_status(gvk)):
            raise NotFound(404, "NotFound", f"{gvk.kind} has no {subresource} subresource")
        obj = self.objects.get(key)
        if obj is None:
            raise NotFound(404, "NotFound", f'{gvk.kind} "{name}" not found')
        return obj

    def _remove(self, key: _Key) -> None:
        del self.objects[key]
        for k in [k for k in self.applied if k[0] == key]:
            del self.applied[k]

    def _log(self, verb: str, key: _Key) -> None:
        self.actions.append(Action(verb, *key))

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)


def _spec(obj: Mapping[str, Any], has_status: bool) -> dict[str, Any]:
    """What the generation tracks: everything but metadata (and status, with a subresource)."""
    skip = {"apiVersion", "kind", "metadata"} | ({"status"} if has_status else set())
    return {k: v for k, v in obj.items() if k not in skip}


_FIELD_REQ = re.compile(r"\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*")


def _field_matcher(selector: str | None) -> Callable[[Object], bool]:
    """A field selector (``metadata.name=x,status.phase!=Running``) on any dotted path; the
    server accepts only a few fields per kind."""
    reqs: builtins.list[tuple[builtins.list[str], bool, str]] = []
    for part in (selector or "").split(","):
        if not part.strip():
            continue
        match = _FIELD_REQ.fullmatch(part)
        if match is None:
            raise BadRequest(400, "BadRequest", f"invalid field selector {selector!r}")
        reqs.append((match[1].split("."), match[2] != "!=", match[3]))

    def matches(obj: Object) -> bool:
        for path, equal, value in reqs:
            node: Any = obj
            for p in path:
                node = node.get(p) if isinstance(node, dict) else None
            text = (
                "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)
            )
            if (text == value) != equal:
                return False
        return True

    return matches
