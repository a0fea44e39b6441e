"""The shapes every package shares: objects, kinds, resources and watch events.

- ``Object`` is decoded JSON, nothing more: no generated models on the hot path.
- ``GVK`` names a kind; ``Resource`` is what discovery resolves it to (plural, scope) and builds
  REST paths. ``WatchEvent`` is one decoded line of a watch stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

__all__ = ["GVK", "Object", "Resource", "WatchEvent", "WatchEventType"]

Object = dict[str, Any]
"""A Kubernetes object (or list, or Status) as decoded JSON."""

WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]


@dataclass(frozen=True, slots=True)
class GVK:
    """Group, version and kind. The core group is ``""``."""

    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        """``"v1"`` for the core group, ``"group/version"`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        """Same as ``api_version``; the discovery key."""
        return self.api_version

    @classmethod
    def from_api_version(cls, api_version: str, kind: str) -> GVK:
        """``GVK.from_api_version("apps/v1", "Deployment")``; ``"v1"`` is the core group."""
        if cls is GVK:
            # Every write and every remembered answer names its kind: a frozen dataclass costs
            # ~1 us to build, a dict lookup nothing (the same few kinds, py-spy converge).
            known = _KNOWN.get((api_version, kind))
            if known is not None:
                return known
        group, sep, version = api_version.rpartition("/")
        if not version or (sep and not group):
            raise ValueError(f"malformed apiVersion {api_version!r}")
        gvk = cls(group, version, kind)
        if cls is GVK and len(_KNOWN) < _MAX_KNOWN:
            _KNOWN[(api_version, kind)] = gvk
        return gvk

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> GVK:
        """The GVK an object declares in ``apiVersion`` and ``kind``.

        Raises:
            ValueError: either field is missing or malformed.
        """
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
            raise ValueError("object has no apiVersion/kind")
        return cls.from_api_version(api_version, kind)

    def __str__(self) -> str:
        return f"{self.api_version}/{self.kind}"


# GVKs built by ``from_api_version``, by (apiVersion, kind); bounded, as kinds come from data.
_KNOWN: dict[tuple[str, str], GVK] = {}
_MAX_KNOWN = 4096


@dataclass(frozen=True, slots=True)
class Resource:
    """A GVK resolved by discovery: its plural name and whether it is namespaced.

    ``path()`` builds REST paths: the collection (``name=None``), an object, or a subresource.
    Names and namespaces are percent-encoded.
    """

    gvk: GVK
    plural: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        """``/api/v1`` for the core group, ``/apis/<group>/<version>`` otherwise."""
        g = self.gvk
        return f"/apis/{g.group}/{g.version}" if g.group else f"/api/{g.version}"

    def path(
        self,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The REST path of the collection, one object, or one object's subresource.

        ``namespace=None`` on a namespaced resource means "all namespaces" and is only valid for
        the collection.

        Raises:
            ValueError: a namespace for a cluster-scoped resource, a name without a namespace
                for a namespaced one, or a subresource without a name.
        """
        if namespace is not None and not self.namespaced:
            raise ValueError(f"{self.gvk.kind} is cluster-scoped; got namespace {namespace!r}")
        if name is not None and self.namespaced and namespace is None:
            raise ValueError(f"{self.gvk.kind} is namespaced; a name needs a namespace")
        if subresource is not None and name is None:
            raise ValueError("a subresource needs a name")
        parts = [self.prefix]
        if namespace is not None:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource is not None:
                parts.append(subresource)
        return "/".join(parts)

    def collection_path(self, namespace: str | None = None) -> str:
        """The list/watch path: one namespace, or all namespaces when ``namespace`` is None."""
        return self.path(namespace)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One decoded watch event. ``ERROR`` events never appear here: they raise ``ApiError``."""

    type: WatchEventType
    object: Object
