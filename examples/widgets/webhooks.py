"""The Widget webhooks: defaulting, and a validation that reads the cluster.

Both are registered for v2, the hub; the configurations use ``matchPolicy: Equivalent``, so a
request made at v1 is converted to v2 by the apiserver (through our conversion webhook) before
it reaches them: one set of rules serves every version.
"""

from __future__ import annotations

from typing import Protocol

from aimctl.client import CONFIGMAP, GVK, Object
from aimctl.webhook import AdmissionRequest, Denied, Warnings
from examples.widgets.api import GROUP

__all__ = ["DEFAULTED_LABEL", "ConfigMapMustExist", "LiveReader", "default_widget"]

DEFAULTED_LABEL = f"{GROUP}/defaulted"
MANY_REPLICAS = 10


async def default_widget(request: AdmissionRequest, obj: Object) -> None:
    """``spec.replicas`` defaults to 1; the object is labelled as defaulted."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    labels = obj.setdefault("metadata", {}).setdefault("labels", {})
    labels[DEFAULTED_LABEL] = "true"


class LiveReader(Protocol):
    async def get_live(self, gvk: GVK, name: str, namespace: str = "") -> Object | None: ...


class ConfigMapMustExist:
    """A Widget may only name a ConfigMap that exists in its namespace.

    Reads the server, not the cache (controller-runtime's APIReader): a ConfigMap created a
    moment before the Widget must be found, and admission has no retry to wait for a cache.
    CEL sees only the object under review, and a ValidatingAdmissionPolicy's params are fixed by
    its binding, not chosen by a field of the object: a lookup by name needs a webhook.
    """

    def __init__(self, reader: LiveReader) -> None:
        self._reader = reader

    async def _check(self, obj: Object) -> Warnings:
        namespace = obj["metadata"].get("namespace", "")
        name = obj["spec"]["configMapRef"]["name"]
        if await self._reader.get_live(CONFIGMAP, name, namespace) is None:
            raise Denied(
                f'ConfigMap "{name}" not found in namespace "{namespace}": '
                "create it before the Widget that uses it"
            )
        replicas = obj["spec"].get("replicas") or 0
        return [f"{replicas} replicas is many"] if replicas > MANY_REPLICAS else []

    async def validate_create(self, request: AdmissionRequest, obj: Object) -> Warnings:
        return await self._check(obj)

    async def validate_update(
        self, request: AdmissionRequest, old: Object, new: Object
    ) -> Warnings:
        if old["spec"]["configMapRef"] == new["spec"]["configMapRef"]:
            return []  # a ConfigMap deleted later must not block other updates
        return await self._check(new)

    async def validate_delete(self, request: AdmissionRequest, obj: Object) -> Warnings:
        return []
