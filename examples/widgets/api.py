"""The ``Widget`` kind (``widgets.example.aimctl.dev``) at two versions, and its CRD.

v2 (the hub, the storage version) names its ConfigMap with a reference and has ``maxSurge``;
v1 names the ConfigMap with a string and has no ``maxSurge``, which it keeps in the annotation
:data:`MAX_SURGE_ANNOTATION` so that v2 -> v1 -> v2 loses nothing (the way Kubernetes' own
types keep fields an older version lacks).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from aimctl.client import GVK, Object

__all__ = [
    "GROUP",
    "MAX_SURGE_ANNOTATION",
    "V1",
    "V2",
    "WidgetV1",
    "WidgetV2",
    "widget_crd",
]

GROUP = "widgets.example.aimctl.dev"
V1 = GVK(GROUP, "v1", "Widget")
V2 = GVK(GROUP, "v2", "Widget")
MAX_SURGE_ANNOTATION = f"{GROUP}/v2-max-surge"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConfigMapRef(_Model):
    name: str


class WidgetStatus(_Model):
    ready: bool | None = None
    observed_generation: int | None = Field(None, alias="observedGeneration")


class SpecV2(_Model):
    config_map_ref: ConfigMapRef = Field(alias="configMapRef")
    replicas: int | None = None
    max_surge: int | None = Field(None, alias="maxSurge")


class SpecV1(_Model):
    config_map_name: str = Field(alias="configMapName")
    replicas: int | None = None


class WidgetV2(_Model):
    """The hub: every conversion goes through it."""

    gvk: ClassVar[GVK] = V2
    api_version: str = Field(V2.api_version, alias="apiVersion")
    kind: str = "Widget"
    metadata: dict[str, Any]
    spec: SpecV2
    status: WidgetStatus | None = None


class WidgetV1(_Model):
    """A spoke: converts itself to and from :class:`WidgetV2`."""

    gvk: ClassVar[GVK] = V1
    api_version: str = Field(V1.api_version, alias="apiVersion")
    kind: str = "Widget"
    metadata: dict[str, Any]
    spec: SpecV1
    status: WidgetStatus | None = None

    def convert_to(self) -> WidgetV2:
        metadata = dict(self.metadata)
        annotations = dict(metadata.get("annotations") or {})
        surge = annotations.pop(MAX_SURGE_ANNOTATION, None)
        if annotations:
            metadata["annotations"] = annotations
        else:
            metadata.pop("annotations", None)
        return WidgetV2(
            apiVersion=V2.api_version,
            metadata=metadata,
            spec=SpecV2(
                configMapRef=ConfigMapRef(name=self.spec.config_map_name),
                replicas=self.spec.replicas,
                maxSurge=int(surge) if surge is not None else None,
            ),
            status=self.status,
        )

    @classmethod
    def convert_from(cls, hub: WidgetV2) -> Self:
        metadata = dict(hub.metadata)
        if hub.spec.max_surge is not None:
            annotations = dict(metadata.get("annotations") or {})
            annotations[MAX_SURGE_ANNOTATION] = str(hub.spec.max_surge)
            metadata["annotations"] = annotations
        return cls(
            apiVersion=V1.api_version,
            metadata=metadata,
            spec=SpecV1(configMapName=hub.spec.config_map_ref.name, replicas=hub.spec.replicas),
            status=hub.status,
        )


_STATUS: Object = {
    "type": "object",
    "properties": {
        "ready": {"type": "boolean"},
        "observedGeneration": {"type": "integer", "format": "int64"},
    },
}


def _version(name: str, spec: Object, *, storage: bool) -> Object:
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec,
                    "status": _STATUS,
                },
                "required": ["spec"],
            }
        },
        "subresources": {"status": {}},
    }


def widget_crd(conversion: Object | None = None) -> Object:
    """The CRD; ``conversion`` is its ``spec.conversion`` (see
    ``aimctl.webhook.conversion_stanza``). Without one the server cannot serve v1 and v2 of
    the same object faithfully, so pass it whenever both versions are used."""
    replicas = {"type": "integer", "minimum": 0}
    v2 = {
        "type": "object",
        "properties": {
            "configMapRef": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
            "replicas": replicas,
            "maxSurge": {"type": "integer", "minimum": 0},
        },
        "required": ["configMapRef"],
    }
    v1 = {
        "type": "object",
        "properties": {"configMapName": {"type": "string"}, "replicas": replicas},
        "required": ["configMapName"],
    }
    spec: Object = {
        "group": GROUP,
        "names": {
            "kind": "Widget",
            "listKind": "WidgetList",
            "plural": "widgets",
            "singular": "widget",
        },
        "scope": "Namespaced",
        "versions": [_version("v1", v1, storage=False), _version("v2", v2, storage=True)],
    }
    if conversion is not None:
        spec["conversion"] = conversion
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": spec,
    }
