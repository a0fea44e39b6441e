"""Transforms applied to every object before it is frozen and stored.

Owns nothing; pure functions. A transform receives the freshly decoded object (a private,
mutable dict nobody else holds), may change it in place and returns the object to store.
Applied by the informer to every listed and watched object, including the final state of
deleted ones, so handlers and store readers see the same shape.

Memory is the first cost of a cache (frameworks.md §6.7): ``managedFields`` is often 20-25 % of
an object and no reconciler reads it; ``kubectl.kubernetes.io/last-applied-configuration`` is a
second full copy of the object for anything applied with client-side ``kubectl apply``.
"""

from __future__ import annotations

from collections.abc import Callable

from aimctl.client import Object

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "Transform",
    "compose",
    "strip_last_applied",
    "strip_managed_fields",
]

Transform = Callable[[Object], Object]
"""Takes a private mutable object, returns the object to store (usually the same one)."""

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def strip_managed_fields(obj: Object) -> Object:
    """Drop ``metadata.managedFields`` (controller-runtime's TransformStripManagedFields)."""
    md = obj.get("metadata")
    if isinstance(md, dict):
        md.pop("managedFields", None)
    return obj


def strip_last_applied(obj: Object) -> Object:
    """Drop kubectl's last-applied-configuration annotation (a JSON copy of the object)."""
    md = obj.get("metadata")
    if isinstance(md, dict):
        annotations = md.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED_ANNOTATION, None)
            if not annotations:
                del md["annotations"]
    return obj


def compose(*transforms: Transform) -> Transform:
    """Apply ``transforms`` left to right."""

    def composed(obj: Object) -> Object:
        for t in transforms:
            obj = t(obj)
        return obj

    return composed
