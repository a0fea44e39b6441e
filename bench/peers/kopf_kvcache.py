"""The AIMKVCache reconcile logic written as a careful kopf user would write it.

    KUBECONFIG=K python -m kopf run --standalone --namespace NS --quiet \\
        -m bench.peers.kopf_kvcache

It does what aimctl's reconciler does for a cache (:mod:`bench.peers._kvcache`): hold deletion
while an AIMService uses the cache (a finalizer), create the password Secret when the cache has
none (POST, with a ``PasswordCreated`` Event), server-side apply the NetworkPolicy, StatefulSet
and Service that differ from the cluster (the StatefulSet's pod template carrying the password's
hash), write the status once, and record an Event when the status first turns ``Progressing``.
In kopf's idioms:

- One handler for ``create``, ``update`` (of ``spec``) and ``resume``; a ``delete`` handler
  makes kopf put its finalizer on every cache (named as aimctl's,
  ``aim.silogen.ai/kvcache-protection``) and hold deletion while the ``kvcache_users`` index
  shows a user.
- **No needless writes.** ``@kopf.index`` es keep the managed StatefulSets, Services and
  NetworkPolicies in memory (trimmed to the fields we compare, not whole objects with
  managedFields), and of the managed Secrets only the password's hash, so the Secret is created
  only when absent, a child is applied only when it differs, and the status, handed to kopf's
  ``patch``, goes out in kopf's own status PATCH only when it changed. Indexes are kopf's
  documented way to read other objects without API calls.
- **Settings for a CRD with a structural schema**: progress and the diff base in annotations
  (status fields kopf would add are pruned by the schema). Event posting stays on for the
  handler's own ``kopf.event`` but at WARNING level, so kopf does not also post an Event per
  handler run; handler errors are retried after 1 s, not kopf's 60 s default; request and watch
  timeouts are bounded.
- **A lean client**: kubernetes-asyncio (kopf's choice for async handlers) with
  ``_preload_content=False``, so responses are not deserialised into generated models nobody
  reads; the connection pool is sized with ``KOPF_BENCH_POOL`` (default 100).
- ``KOPF_BENCH_WORKERS`` sets ``settings.queueing.worker_limit`` (0 or unset: kopf's unlimited
  default).

Instrumentation (not part of the operator): with ``KOPF_BENCH_STATS_PORT`` set, a tiny HTTP server
on 127.0.0.1 answers ``GET /stats`` with handler counts, so the benchmark can tell when every
resume handler has run. kopf has no metrics of its own and its probe results are cached for 10 s.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import kopf
from aiohttp import web
from kubernetes_asyncio import client as k8s, config as k8s_config

from aimctl.reconcilers._common import KVCACHE_CONTROLLER, LABEL_MANAGED_BY
from aimctl.reconcilers.kvcache._desired import (
    auth_secret_name,
    network_policy_name,
    password_hash,
    pvc_name,
    service_name,
    statefulset_name,
)
from aimctl.reconcilers.service._names import cache_name_of
from bench.peers._kvcache import (
    FIELD_MANAGER,
    FINALIZER,
    GROUP,
    PASSWORD_CREATED_MESSAGE,
    PLURAL,
    PROGRESSING_MESSAGE,
    VERSION,
    desired_state,
    in_sync,
)

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MANAGED = {LABEL_MANAGED_BY: KVCACHE_CONTROLLER}
STATS: dict[str, float] = {
    "create": 0,
    "update": 0,
    "resume": 0,
    "delete": 0,
    "creates": 0,
    "applies": 0,
    "status_patches": 0,
    "errors": 0,
    "last_handled": 0.0,
}

Key = tuple[str | None, str]
Index = kopf.Index[Key, Any]


def _trim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconcile compares: identity, labels, owner references and spec."""
    meta = body["metadata"]
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": list(meta.get("ownerReferences") or []),
        },
        "spec": body.get("spec"),
    }


@kopf.index("apps", "v1", "statefulsets", labels=MANAGED)
def kvcache_statefulsets(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): _trim(body)}


@kopf.index("", "v1", "services", labels=MANAGED)
def kvcache_services(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): _trim(body)}


@kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED)
def kvcache_networkpolicies(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): _trim(body)}


@kopf.index("", "v1", "secrets", labels=MANAGED)
def kvcache_secrets(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, str | None]:
    """The password's hash of each cache's Secret (never the password itself)."""
    return {(namespace, name): password_hash(body)}


@kopf.index(GROUP, VERSION, "aimservices")
def kvcache_users(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, str] | None:
    """AIMService names by the (namespace, cache) they use."""
    cache = cache_name_of(body)
    if cache is None or body["metadata"].get("deletionTimestamp"):
        return None
    return {(namespace, cache): name}


def _first(index: Index, key: Key) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


async def _stats(_: web.Request) -> web.Response:
    return web.json_response(STATS)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.queueing.worker_limit = int(os.environ.get("KOPF_BENCH_WORKERS", "0")) or None
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.execution.default_backoff = 1

    conf = k8s.Configuration()
    await k8s_config.load_kube_config(client_configuration=conf)
    conf.connection_pool_maxsize = int(os.environ.get("KOPF_BENCH_POOL", "100"))
    memo.api = k8s.ApiClient(conf)
    memo.apps = k8s.AppsV1Api(memo.api)
    memo.core = k8s.CoreV1Api(memo.api)
    memo.net = k8s.NetworkingV1Api(memo.api)
    memo.stats_runner = None
    port = os.environ.get("KOPF_BENCH_STATS_PORT")
    if port:
        app = web.Application()
        app.router.add_get("/stats", _stats)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(port)).start()
        memo.stats_runner = runner


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.api.close()
    if memo.stats_runner is not None:
        await memo.stats_runner.cleanup()


async def _check(resp: Any, what: str) -> bytes:
    """Read and release a raw (``_preload_content=False``) response; raise on an error, else
    return its body."""
    try:
        data: bytes = await resp.read()
    finally:
        resp.release()
    if resp.status >= 300:
        raise kopf.TemporaryError(f"{what}: {resp.status} {data[:300]!r}", delay=1)
    return data


async def _create_secret(
    memo: kopf.Memo, namespace: str | None, name: str, secret: dict[str, Any]
) -> tuple[str | None, bool]:
    """POST the cache's password Secret; (the hash of the password in place, whether ours is
    it). One that exists already (the index lagging) is read instead, never overwritten."""
    resp = await memo.core.create_namespaced_secret(namespace, secret, _preload_content=False)
    if resp.status != 409:
        await _check(resp, f"create Secret {name}")
        return password_hash(secret), True
    resp.release()
    resp = await memo.core.read_namespaced_secret(name, namespace, _preload_content=False)
    return password_hash(json.loads(await _check(resp, f"read Secret {name}"))), False


def _users(index: Index, namespace: str | None, cache: str) -> list[str]:
    return sorted(index.get((namespace, cache), []))


@kopf.on.resume(GROUP, VERSION, PLURAL, backoff=1)
@kopf.on.create(GROUP, VERSION, PLURAL, backoff=1)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", backoff=1)
async def reconcile(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    reason: str,
    namespace: str | None,
    name: str,
    **kwargs: Any,
) -> None:
    # kopf passes every index as a keyword argument named after its function.
    statefulsets: Index = kwargs["kvcache_statefulsets"]
    services: Index = kwargs["kvcache_services"]
    policies: Index = kwargs["kvcache_networkpolicies"]
    try:
        users = _users(kwargs["kvcache_users"], namespace, name)
        secret = auth_secret_name(name)
        auth_hash = _first(kwargs["kvcache_secrets"], (namespace, secret))
        want = desired_state(body, users, auth_hash)
        if auth_hash is None:
            auth_hash, created = await _create_secret(memo, namespace, secret, want.secret)
            if created:
                STATS["creates"] += 1
                kopf.event(
                    body,
                    type="Normal",
                    reason="PasswordCreated",
                    message=PASSWORD_CREATED_MESSAGE.format(secret=secret),
                )
            else:
                want = desired_state(body, users, auth_hash)
            if auth_hash is None:
                raise kopf.TemporaryError(f"Secret {secret} holds no password", delay=5)
        apply = {"field_manager": FIELD_MANAGER, "force": True}
        raw = {"_content_type": APPLY_CONTENT_TYPE, "_preload_content": False}
        sts, svc, netpol = statefulset_name(name), service_name(name), network_policy_name(name)
        # In aimctl's order: the NetworkPolicy fences Redis before it runs.
        if not in_sync(want.network_policy, _first(policies, (namespace, netpol))):
            resp = await memo.net.patch_namespaced_network_policy(
                netpol, namespace, want.network_policy, **apply, **raw
            )
            await _check(resp, f"apply NetworkPolicy {netpol}")
            STATS["applies"] += 1
        if not in_sync(want.statefulset, _first(statefulsets, (namespace, sts))):
            resp = await memo.apps.patch_namespaced_stateful_set(
                sts, namespace, want.statefulset, **apply, **raw
            )
            await _check(resp, f"apply StatefulSet {sts}")
            STATS["applies"] += 1
        if not in_sync(want.service, _first(services, (namespace, svc))):
            resp = await memo.core.patch_namespaced_service(
                svc, namespace, want.service, **apply, **raw
            )
            await _check(resp, f"apply Service {svc}")
            STATS["applies"] += 1
        old = body.get("status") or {}
        if not in_sync(want.status, old):
            patch["status"] = want.status
            STATS["status_patches"] += 1
            if old.get("status") != want.status["status"]:
                kopf.event(
                    body,
                    type="Normal",
                    reason="KVCacheProgressing",
                    message=PROGRESSING_MESSAGE.format(pvc=pvc_name(name)),
                )
    except Exception:
        STATS["errors"] += 1
        raise
    STATS[str(reason)] += 1
    STATS["last_handled"] = time.time()


@kopf.on.delete(GROUP, VERSION, PLURAL, backoff=1)
async def hold_while_used(namespace: str | None, name: str, **kwargs: Any) -> None:
    users = _users(kwargs["kvcache_users"], namespace, name)
    if users:
        raise kopf.TemporaryError(f"in use by AIMService {', '.join(users)}", delay=5)
    STATS["delete"] += 1
