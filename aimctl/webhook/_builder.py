"""``manager.webhook()``: register a kind's defaulting, validating and conversion webhooks.

Reads as controller-runtime's ``WebhookManagedBy(mgr).For(obj).WithDefaulter(d)
.WithValidator(v).Complete()`` (kubernetes-sigs/controller-runtime: pkg/builder/webhook.go),
with the same paths: ``/mutate-<group with - for .>-<version>-<kind lowercase>``,
``/validate-...`` and ``/convert``. :meth:`WebhookBuilder.complete` registers the handlers on the
server and returns the :class:`WebhookRegistration` the manifests are generated from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

from aimctl.client import GVK
from aimctl.webhook._admission import (
    Defaulter,
    DefaulterFunc,
    DefaultingHandler,
    ValidatingHandler,
    Validator,
)
from aimctl.webhook._conversion import HubSpoke
from aimctl.webhook._server import CONVERSION_PATH, WebhookServer

__all__ = ["WebhookBuilder", "WebhookRegistration", "mutate_path", "validate_path"]


def _suffix(gvk: GVK) -> str:
    return f"{gvk.group.replace('.', '-')}-{gvk.version}-{gvk.kind.lower()}"


def mutate_path(gvk: GVK) -> str:
    return f"/mutate-{_suffix(gvk)}"


def validate_path(gvk: GVK) -> str:
    return f"/validate-{_suffix(gvk)}"


@dataclass(frozen=True)
class WebhookRegistration:
    """What was registered for one kind; feeds :func:`webhook_configurations`.

    ``plural`` and ``namespaced`` describe the resource for the configurations' rules;
    ``validate_delete`` adds DELETE to the validating rule's operations.
    """

    gvk: GVK
    plural: str
    namespaced: bool = True
    mutate_path: str | None = None
    validate_path: str | None = None
    validate_delete: bool = False
    conversion_path: str | None = None


class WebhookBuilder:
    """Collects one kind's webhooks; nothing is registered until :meth:`complete`."""

    def __init__(self, server: WebhookServer) -> None:
        self._server = server
        self._gvk: GVK | None = None
        self._plural = ""
        self._namespaced = True
        self._defaulter: Defaulter | DefaulterFunc | None = None
        self._validator: Validator | None = None
        self._validate_delete = False
        self._converter: HubSpoke[Any] | None = None

    def for_(self, gvk: GVK, *, plural: str | None = None, namespaced: bool = True) -> Self:
        """The kind (and version) admitted. ``plural`` defaults to the lowercase kind + "s"."""
        self._gvk = gvk
        self._plural = plural or f"{gvk.kind.lower()}s"
        self._namespaced = namespaced
        return self

    def defaulter(self, defaulter: Defaulter | DefaulterFunc) -> Self:
        """A mutating webhook: ``defaulter`` changes the object, the server sends the patch."""
        self._defaulter = defaulter
        return self

    def validator(self, validator: Validator, *, on_delete: bool = False) -> Self:
        """A validating webhook; ``on_delete`` also sends DELETE requests to it."""
        self._validator = validator
        self._validate_delete = on_delete
        return self

    def conversion(self, converter: HubSpoke[Any]) -> Self:
        """Serve the kind's CRD conversion (hub and spokes) at ``/convert``."""
        self._converter = converter
        return self

    def complete(self) -> WebhookRegistration:
        """Register the handlers on the manager's webhook server.

        Raises:
            ValueError: no ``for_``, nothing to register, or a path already registered.
        """
        gvk = self._gvk
        if gvk is None:
            raise ValueError("webhook builder: call for_(gvk) first")
        if self._defaulter is None and self._validator is None and self._converter is None:
            raise ValueError(f"webhook builder for {gvk.kind}: nothing to register")
        panics = self._server.metrics.admission_panics
        reg = WebhookRegistration(gvk, self._plural, self._namespaced)
        if self._defaulter is not None:
            path = mutate_path(gvk)
            handler = DefaultingHandler(self._defaulter, name=path, panics=panics)
            self._server.register_admission(path, handler)
            reg = replace(reg, mutate_path=path)
        if self._validator is not None:
            path = validate_path(gvk)
            self._server.register_admission(
                path, ValidatingHandler(self._validator, name=path, panics=panics)
            )
            reg = replace(reg, validate_path=path, validate_delete=self._validate_delete)
        if self._converter is not None:
            self._server.register_conversion(self._converter)
            reg = replace(reg, conversion_path=CONVERSION_PATH)
        self._server.registrations.append(reg)
        return reg
