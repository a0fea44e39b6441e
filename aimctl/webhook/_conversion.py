"""CRD conversion, hub and spoke, answering ConversionReview v1.

The model is controller-runtime's (kubernetes-sigs/controller-runtime: pkg/conversion/
conversion.go, pkg/webhook/conversion/conversion.go): one version of a kind is the *hub*
(usually the storage version); every other version is a *spoke* that converts itself to the
hub (``convert_to``) and builds itself from it (``convert_from``). Spoke to spoke goes through
the hub, so n versions need 2(n-1) functions, not n(n-1). Fields a version cannot express are
kept somewhere it can (annotations, as Kubernetes' own API types do), so any round trip is
lossless; the property tests check exactly that.

The ConversionReview v1 contract (apiextensions.k8s.io/v1): the request holds ``uid``,
``desiredAPIVersion`` and ``objects``; the response echoes ``uid`` and holds
``convertedObjects`` (same order, each at the desired version, metadata unchanged but for
labels and annotations) and ``result.status`` ``Success``, or ``Failure`` with a message, in
which case the apiserver fails the whole request with that message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import structlog

from aimctl.client import GVK, Object

__all__ = [
    "CONVERSION_API_VERSION",
    "ConversionError",
    "Convertible",
    "Hub",
    "HubSpoke",
    "convert_review",
]

log = structlog.get_logger("aimctl.webhook")

CONVERSION_API_VERSION = "apiextensions.k8s.io/v1"


class Hub(Protocol):
    """A version model: built from an object dict, dumped back to one. ``gvk`` names it."""

    gvk: ClassVar[GVK]

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...

    def model_dump(
        self, *, mode: str = ..., by_alias: bool = ..., exclude_none: bool = ...
    ) -> dict[str, Any]: ...


HubT = TypeVar("HubT", bound=Hub)


class Convertible(Hub, Protocol[HubT]):
    """A spoke version: converts itself to the hub and builds itself from it."""

    def convert_to(self) -> HubT: ...

    @classmethod
    def convert_from(cls, hub: HubT) -> Self: ...


class ConversionError(Exception):
    """A conversion failed; the message is what the apiserver reports to the client."""


def _dump(model: Hub) -> Object:
    out = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    out["apiVersion"] = model.gvk.api_version
    out["kind"] = model.gvk.kind
    return out


class HubSpoke(Generic[HubT]):
    """The converter of one group-kind: a hub model and its spoke models."""

    def __init__(self, hub: type[HubT], *spokes: type[Convertible[HubT]]) -> None:
        self.hub = hub
        self.group, self.kind = hub.gvk.group, hub.gvk.kind
        self.versions: dict[str, type[Hub]] = {hub.gvk.version: hub}
        for spoke in spokes:
            g = spoke.gvk
            if (g.group, g.kind) != (self.group, self.kind):
                raise ValueError(f"spoke {g} is not a version of {hub.gvk}")
            if g.version in self.versions:
                raise ValueError(f"two models for {g}")
            self.versions[g.version] = spoke

    def _model(self, api_version: str) -> type[Hub]:
        group, _, version = api_version.rpartition("/")
        model = self.versions.get(version)
        if group != self.group or model is None:
            raise ConversionError(f"{api_version} is not a served version of {self.kind}")
        return model

    def to_hub(self, obj: Object) -> HubT:
        src = self._model(str(obj.get("apiVersion", "")))
        model = src.model_validate(obj)
        if src is self.hub:
            return model  # type: ignore[return-value]
        return model.convert_to()  # type: ignore[attr-defined,no-any-return]

    def convert(self, obj: Object, desired_api_version: str) -> Object:
        """``obj`` at ``desired_api_version`` (unchanged when it already is)."""
        if obj.get("apiVersion") == desired_api_version:
            return obj
        dst = self._model(desired_api_version)
        hub = self.to_hub(obj)
        out = hub if dst is self.hub else dst.convert_from(hub)  # type: ignore[attr-defined]
        return _dump(out)


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


def convert_review(
    review: Any,
    converters: Mapping[tuple[str, str], HubSpoke[Any]],
    *,
    panics: _Counter | None = None,
) -> Object:
    """Answer a ConversionReview v1 document (``converters`` keyed by (group, kind)).

    A converter that raises anything but :class:`ConversionError` is a bug: logged with its
    traceback and counted in ``panics``; the answer is a Failure either way.

    Raises:
        ValueError: not a ConversionReview v1 with a request (the server answers 400).
    """
    if not isinstance(review, dict) or review.get("kind") != "ConversionReview":
        raise ValueError("expected a ConversionReview")
    if review.get("apiVersion") != CONVERSION_API_VERSION:
        raise ValueError(f"unsupported ConversionReview version {review.get('apiVersion')!r}")
    req = review.get("request")
    if not isinstance(req, dict):
        raise ValueError("the ConversionReview has no request")
    uid = str(req.get("uid", ""))
    desired = str(req.get("desiredAPIVersion", ""))
    try:
        converted = []
        for obj in req.get("objects") or ():
            group = str(obj.get("apiVersion", "")).rpartition("/")[0]
            converter = converters.get((group, str(obj.get("kind", ""))))
            if converter is None:
                raise ConversionError(f"no conversion registered for {group} {obj.get('kind')}")
            converted.append(converter.convert(obj, desired))
        response: Object = {
            "uid": uid,
            "convertedObjects": converted,
            "result": {"status": "Success"},
        }
    except Exception as err:
        if not isinstance(err, ConversionError):
            log.error("Conversion failed", uid=uid, desired=desired, exc_info=err)
            if panics is not None:
                panics.inc()
        response = {"uid": uid, "result": {"status": "Failure", "message": str(err)}}
    return {"apiVersion": CONVERSION_API_VERSION, "kind": "ConversionReview", "response": response}
