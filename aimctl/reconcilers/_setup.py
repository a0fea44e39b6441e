"""``add_to_manager``: both AIM controllers, their watches and their cache scoping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aimctl.controller import Request
from aimctl.manager import Manager
from aimctl.objects import labels_of, meta, namespace_of
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    CONFIGMAP,
    DEPLOYMENT,
    KVCACHE_CONTROLLER,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_SCOPED,
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
)
from aimctl.reconcilers.kvcache._reconciler import KVCacheReconciler
from aimctl.reconcilers.service._names import cache_key, cache_name_of
from aimctl.reconcilers.service._reconciler import ServiceReconciler

__all__ = ["add_to_manager"]

Obj = Mapping[str, Any]


def add_to_manager(manager: Manager, *, kvcache_workers: int = 2, service_workers: int = 2) -> None:
    """Register the AIMKVCache and AIMService controllers on ``manager``."""
    # Cache only what the operator manages: a cluster's Pods, PVCs, Services and ConfigMaps are
    # mostly not ours, and caching them all is the usual way controllers run out of memory.
    ours = f"{LABEL_MANAGED_BY} in ({KVCACHE_CONTROLLER},{SERVICE_CONTROLLER})"
    for gvk in LABEL_SCOPED:
        manager.cache_only(gvk, ours)
    manager.add_index(AIMSERVICE, SERVICES_BY_CACHE, cache_key)

    def all_caches(_: Obj) -> Iterable[Request]:
        for informer in manager.informers.informers_for(AIMKVCACHE):
            for c in informer.store.list():
                yield Request(namespace_of(c), meta(c)["name"])

    def caches_in_namespace(obj: Obj) -> Iterable[Request]:
        ns = namespace_of(obj)
        for informer in manager.informers.informers_for(AIMKVCACHE):
            for c in informer.store.list(namespace=ns):
                yield Request(ns, meta(c)["name"])

    def cache_of_labelled(obj: Obj) -> Iterable[Request]:
        labels = labels_of(obj)
        if labels.get(LABEL_MANAGED_BY) == KVCACHE_CONTROLLER and LABEL_INSTANCE in labels:
            yield Request(namespace_of(obj), labels[LABEL_INSTANCE])

    def cache_of_service(obj: Obj) -> Iterable[Request]:
        name = cache_name_of(obj)
        if name:
            yield Request(namespace_of(obj), name)

    def services_using(ns: str, cache: str) -> Iterable[Request]:
        for informer in manager.informers.informers_for(AIMSERVICE):
            for s in informer.store.by_index(SERVICES_BY_CACHE, f"{ns}/{cache}"):
                yield Request(ns, meta(s)["name"])

    def service_of_pod(obj: Obj) -> Iterable[Request]:
        labels = labels_of(obj)
        if labels.get(LABEL_MANAGED_BY) == SERVICE_CONTROLLER and LABEL_INSTANCE in labels:
            yield Request(namespace_of(obj), labels[LABEL_INSTANCE])

    def services_of_cache(obj: Obj) -> Iterable[Request]:
        return services_using(namespace_of(obj), meta(obj)["name"])

    def services_of_cache_child(obj: Obj) -> Iterable[Request]:
        # A cache's password Secret (labelled with its cache): a new password rolls the pods of
        # every service using the cache, shared or owned.
        labels = labels_of(obj)
        if labels.get(LABEL_MANAGED_BY) == KVCACHE_CONTROLLER and LABEL_INSTANCE in labels:
            yield from services_using(namespace_of(obj), labels[LABEL_INSTANCE])

    kv_client = manager.client(KVCACHE_CONTROLLER)
    (
        manager.controller()
        .named(KVCACHE_CONTROLLER)
        .for_(AIMKVCACHE)
        .owns(STATEFULSET)
        .owns(SERVICE)
        .owns(NETWORKPOLICY)
        .owns(SECRET)  # the password: deleted (rotation) or edited, it is re-created or judged
        .watches(PVC, cache_of_labelled)
        .watches(POD, cache_of_labelled)
        .watches(AIMSERVICE, cache_of_service)  # users list, deletion hold, NetworkPolicy
        .watches(STORAGECLASS, all_caches)  # "no default class" and "class not found" heal
        .watches(RESOURCEQUOTA, caches_in_namespace)  # quota raised: retry the claim
        .with_options(max_concurrent_reconciles=kvcache_workers)
        .complete(KVCacheReconciler(kv_client, manager.event_recorder(KVCACHE_CONTROLLER)))
    )
    svc_client = manager.client(SERVICE_CONTROLLER)
    (
        manager.controller()
        .named(SERVICE_CONTROLLER)
        .for_(AIMSERVICE)
        .owns(DEPLOYMENT)
        .owns(SERVICE)
        .owns(CONFIGMAP)
        .watches(AIMKVCACHE, services_of_cache)  # owned or shared: the service follows its cache
        .watches(SECRET, services_of_cache_child)  # its cache's password: consumers roll with it
        .watches(POD, service_of_pod)  # workload diagnosis: its pods' pulls, crashes, OOM kills
        .with_options(max_concurrent_reconciles=service_workers)
        .complete(ServiceReconciler(svc_client, manager.event_recorder(SERVICE_CONTROLLER)))
    )
