"""Hypothesis strategies for the hostile-input tests.

``batches()`` draws AIMKVCache and AIMService specs that are valid under the CRD schema (the
generated OpenAPI schema and its CEL rules): quantities in every spelling the pattern admits,
env lists (unique names, literal values in any Unicode, control characters included, empty
values included, every ``valueFrom`` source), resources with requests not above limits, every
access-mode set, Redis settings, pull policy and secrets, scheduling, cache names up to the
40-character limit, services with their own cache (names up to 32) or a shared/missing one
(names up to 63), LMCache configs. ``garbage()`` draws arbitrary JSON for a spec stored under a
permissive schema.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from aimctl.api.v1alpha1 import (
    AIMKVCACHE_MAX_NAME_LENGTH,
    AIMSERVICE_MAX_NAME_LENGTH,
    AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE,
)

Json = Any

ACCESS_MODES = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]
_UNITS = ["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti", "e3", "E", "n", "u"]


def text(*, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Any Unicode text (every code point but the surrogates, which JSON cannot carry as UTF-8):
    C0 and C1 control characters (U+0000-U+001F, U+007F-U+009F) and U+FFFE/U+FFFF included."""
    return st.text(st.characters(), min_size=min_size, max_size=max_size)


_IDENT = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z")
_LABELISH = st.from_regex(r"\A[a-z]([-a-z0-9]{0,14}[a-z0-9])?\Z")
# What the CRD allows for storageClassName: an RFC 1123 subdomain.
_DNS_SUBDOMAIN = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?(\.[a-z0-9]{1,5})?\Z")


@st.composite
def quantity(draw: st.DrawFn, *, positive: bool = False) -> Json:
    """A Kubernetes quantity as the CRD's pattern admits it (string or integer)."""
    if draw(st.booleans()):
        return draw(st.integers(1 if positive else 0, 2**40))
    whole = draw(st.integers(1 if positive else 0, 10**6))
    frac = draw(st.sampled_from(["", ".5", ".25", ".125", ".0"]))
    sign = "" if positive else draw(st.sampled_from(["", "", "", "+"]))
    return f"{sign}{whole}{frac}{draw(st.sampled_from(_UNITS))}"


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    """requests and/or limits; a request never exceeds the limit of the same resource."""
    names = draw(
        st.lists(
            st.sampled_from(
                ["cpu", "memory", "ephemeral-storage", "amd.com/gpu", "example.com/widget"]
            )
            | text(min_size=1, max_size=12),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    limits: dict[str, Json] = {}
    requests: dict[str, Json] = {}
    for name in names:
        amount = draw(st.integers(1, 4096))
        unit = draw(st.sampled_from(["", "m", "Mi", "Gi"]))
        where = draw(st.sampled_from(["both", "limit", "request"]))
        if where in ("both", "limit"):
            limits[name] = f"{amount}{unit}"
        if where in ("both", "request"):
            low = draw(st.integers(1, amount)) if where == "both" else amount
            requests[name] = f"{low}{unit}"
    out: dict[str, Any] = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


@st.composite
def env_var(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["value", "value", "none", "cm", "secret", "field", "resource"]))
    var: dict[str, Any] = {"name": name}
    if kind == "value":
        # "" included: the API server drops an empty value from the objects it stores.
        var["value"] = draw(st.just("") | text(max_size=40))
    elif kind in ("cm", "secret"):
        ref: dict[str, Any] = {"name": draw(_LABELISH), "key": draw(_IDENT)}
        if draw(st.booleans()):
            ref["optional"] = draw(st.booleans())
        var["valueFrom"] = {"configMapKeyRef" if kind == "cm" else "secretKeyRef": ref}
    elif kind == "field":
        path = draw(
            st.sampled_from(["metadata.name", "metadata.namespace", "status.podIP"])
            | text(min_size=1, max_size=20)
        )
        var["valueFrom"] = {"fieldRef": {"fieldPath": path}}
    elif kind == "resource":
        res: dict[str, Any] = {
            "resource": draw(st.sampled_from(["limits.memory", "requests.cpu", "limits.cpu"]))
        }
        if draw(st.booleans()):
            res["divisor"] = draw(st.sampled_from(["1", "1m", "1Mi", "1000m", "1Ki"]))
        if draw(st.booleans()):
            res["containerName"] = "redis"
        var["valueFrom"] = {"resourceFieldRef": res}
    return var


@st.composite
def env(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(_IDENT | text(min_size=1, max_size=16), max_size=8, unique=True))
    return [draw(env_var(n)) for n in names]


@st.composite
def storage(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["size"] = draw(quantity(positive=True))
    if draw(st.booleans()):
        out["accessModes"] = draw(
            st.lists(st.sampled_from(ACCESS_MODES), min_size=1, max_size=4, unique=True)
        )
    if draw(st.integers(0, 3)) == 0:
        out["storageClassName"] = draw(_DNS_SUBDOMAIN)
    return out


IMAGES = st.sampled_from(
    [
        "redis:7.2.4",
        "redis:7.2.5",
        "docker.io/library/redis:7",
        "registry.example.com:5000/team/redis@sha256:" + "a" * 64,
    ]
) | text(min_size=1, max_size=30)


_POLICIES = [
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "noeviction",
]


@st.composite
def redis_settings(draw: st.DrawFn, *, memory_set: bool) -> dict[str, Any]:
    """spec.redis: every policy and persistence; a maxMemory only below the default 1Gi (with
    the user's own memory it could exceed it, which admission refuses)."""
    redis: dict[str, Any] = {}
    if draw(st.booleans()):
        redis["maxMemoryPolicy"] = draw(st.sampled_from(_POLICIES))
    if draw(st.booleans()):
        redis["persistence"] = draw(st.sampled_from(["None", "RDB", "AOF"]))
    if not memory_set and draw(st.booleans()):
        redis["maxMemory"] = draw(st.sampled_from(["64Mi", "500Mi", "1000000k", 1000000]))
    return redis


@st.composite
def pod_settings(draw: st.DrawFn) -> dict[str, Any]:
    """Pull policy and secrets, scheduling (tolerations valid for a pod: tolerationSeconds only
    with NoExecute), as the pod template takes them."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["imagePullPolicy"] = draw(st.sampled_from(["Always", "IfNotPresent", "Never"]))
    if draw(st.booleans()):
        out["imagePullSecrets"] = [{"name": n} for n in draw(st.lists(_LABELISH, max_size=3))]
    if draw(st.booleans()):
        out["nodeSelector"] = draw(st.dictionaries(_LABELISH, _LABELISH, max_size=3))
    if draw(st.booleans()):
        tolerations = []
        for _ in range(draw(st.integers(0, 3))):
            t: dict[str, Any] = {"key": draw(_LABELISH)}
            if draw(st.booleans()):
                t["operator"] = "Exists"
            else:
                t["value"] = draw(_LABELISH)
            effect = draw(st.sampled_from([None, "NoSchedule", "PreferNoSchedule", "NoExecute"]))
            if effect is not None:
                t["effect"] = effect
            if effect == "NoExecute" and draw(st.booleans()):
                t["tolerationSeconds"] = draw(st.integers(0, 3600))
            tolerations.append(t)
        out["tolerations"] = tolerations
    if draw(st.booleans()):
        out["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": draw(_LABELISH), "operator": "Exists"},
                            ]
                        }
                    ]
                }
            }
        }
    if draw(st.booleans()):
        out["priorityClassName"] = draw(_DNS_SUBDOMAIN)
    return out


def _memory_set(spec: dict[str, Any]) -> bool:
    res = spec.get("resources") or {}
    return any("memory" in (res.get(k) or {}) for k in ("limits", "requests"))


@st.composite
def cache_spec(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["kvCacheType"] = "redis"
    if draw(st.booleans()):
        spec["image"] = draw(IMAGES)
    if draw(st.booleans()):
        spec["env"] = draw(env())
    if draw(st.booleans()):
        spec["resources"] = draw(resources())
    if draw(st.booleans()):
        spec["storage"] = draw(storage())
    if draw(st.booleans()):
        spec["redis"] = draw(redis_settings(memory_set=_memory_set(spec)))
    if draw(st.booleans()):
        spec["metrics"] = {"enabled": draw(st.booleans())}
    spec.update(draw(pod_settings()))
    return spec


@dataclass
class ServiceDraw:
    spec: dict[str, Any]
    # Index of a cache of the batch to use by name; -1: a cache that does not exist; None: the
    # service's own cache (kvCache.type) or no cache.
    shared: int | None
    own_cache: bool
    name_length: int


@st.composite
def service(draw: st.DrawFn, caches: int) -> ServiceDraw:
    spec: dict[str, Any] = {"model": {"image": draw(IMAGES)}}
    if draw(st.booleans()):
        spec["replicas"] = draw(st.integers(0, 3) | st.integers(0, 2**31 - 1))
    if draw(st.booleans()):
        spec["port"] = draw(st.integers(1, 65535))
    if draw(st.booleans()):
        spec["env"] = draw(env())
    if draw(st.booleans()):
        spec["resources"] = draw(resources())
    spec.update(draw(pod_settings()))
    mode = draw(st.sampled_from(["none", "own", "shared"]))
    shared: int | None = None
    if mode == "own":
        kv: dict[str, Any] = {"type": "redis"}
        for key, strategy in (
            ("storage", storage()),
            ("image", IMAGES),
            ("env", env()),
            ("resources", resources()),
        ):
            if draw(st.booleans()):
                kv[key] = draw(strategy)
        if draw(st.booleans()):
            kv["redis"] = draw(redis_settings(memory_set=_memory_set(kv)))
        if draw(st.booleans()):
            kv["metrics"] = {"enabled": draw(st.booleans())}
        for key in ("imagePullPolicy", "imagePullSecrets"):
            value = draw(pod_settings()).get(key)
            if value is not None:
                kv[key] = value
        spec["kvCache"] = kv
    elif mode == "shared":
        spec["kvCache"] = {"name": "placeholder"}
        shared = draw(st.integers(-1, caches - 1))
    if mode != "none" and draw(st.booleans()):
        spec["kvCache"]["lmCacheConfig"] = draw(
            st.sampled_from(["remote_url: {SERVICE_URL}\n", "remote_url: redis://{SERVICE_URL}\n"])
            | text(max_size=60)
        )
    max_length = (
        AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE if mode == "own" else AIMSERVICE_MAX_NAME_LENGTH
    )
    return ServiceDraw(
        spec=spec,
        shared=shared,
        own_cache=mode == "own",
        name_length=draw(st.integers(8, max_length)),
    )


@dataclass
class Batch:
    caches: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # spec, name length
    services: list[ServiceDraw] = field(default_factory=list)

    def objects(self, prefix: str) -> list[dict[str, Any]]:
        """The batch's objects, named ``<prefix>c<j>`` / ``<prefix>s<j>`` padded to length."""

        def name(base: str, length: int) -> str:
            return (base + "x" * 253)[: max(length, len(base))]

        out: list[dict[str, Any]] = []
        cache_names = [name(f"{prefix}c{j}", n) for j, (_, n) in enumerate(self.caches)]
        for cache_name, (spec, _) in zip(cache_names, self.caches, strict=True):
            out.append(_object("AIMKVCache", cache_name, spec))
        for j, s in enumerate(self.services):
            spec = {**s.spec}
            if s.shared is not None:
                target = cache_names[s.shared] if s.shared >= 0 else f"{prefix}missing"
                spec["kvCache"] = {**spec["kvCache"], "name": target}
            out.append(_object("AIMService", name(f"{prefix}s{j}", s.name_length), spec))
        return out


def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    caches = draw(
        st.lists(
            st.tuples(cache_spec(), st.integers(8, AIMKVCACHE_MAX_NAME_LENGTH)),
            min_size=1,
            max_size=4,
        )
    )
    services = draw(st.lists(service(len(caches)), max_size=3))
    return Batch(caches=caches, services=services)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=string.printable + "äöü€😀", max_size=12)
)

_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)

_KNOWN_KEYS = [
    "kvCacheType",
    "image",
    "env",
    "resources",
    "storage",
    "model",
    "replicas",
    "port",
    "kvCache",
]


@st.composite
def garbage(draw: st.DrawFn) -> Json:
    """A spec of the wrong shape: arbitrary JSON, or an object whose known fields hold garbage."""
    if draw(st.booleans()):
        return draw(_JSON)
    return draw(st.dictionaries(st.sampled_from(_KNOWN_KEYS), _JSON, min_size=1, max_size=4))
