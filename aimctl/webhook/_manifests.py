"""Webhook configurations and the CRD conversion stanza, generated from the registrations.

The shapes are what controller-gen writes from kubebuilder markers
(``+kubebuilder:webhook:path=...,mutating=true,failurePolicy=fail,sideEffects=None,
admissionReviewVersions=v1``): one MutatingWebhookConfiguration and one
ValidatingWebhookConfiguration holding a webhook per registered kind, each called through a
Service (in a cluster) or a URL (local runs and tests: the apiserver calls
``https://127.0.0.1:<port>``), trusting ``ca_bundle``. Output is deterministic (webhooks
sorted by name), so a committed copy can be checked for drift like the CRDs.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from aimctl.client import Object
from aimctl.webhook._builder import WebhookRegistration

__all__ = ["ServiceReference", "conversion_stanza", "webhook_configurations"]


@dataclass(frozen=True)
class ServiceReference:
    """The Service in front of the webhook server (``port`` is the Service's port)."""

    name: str
    namespace: str
    port: int = 443


def _client_config(
    path: str, service: ServiceReference | None, url: str | None, ca_bundle: bytes | None
) -> Object:
    if (service is None) == (url is None):
        raise ValueError("give exactly one of service and url")
    config: Object
    if service is not None:
        config = {
            "service": {
                "name": service.name,
                "namespace": service.namespace,
                "path": path,
                "port": service.port,
            }
        }
    else:
        config = {"url": f"{str(url).rstrip('/')}{path}"}
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode()
    return config


def _webhook(
    prefix: str,
    reg: WebhookRegistration,
    path: str,
    operations: list[str],
    client_config: Object,
    timeout_seconds: int,
) -> Object:
    gvk = reg.gvk
    return {
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "name": f"{prefix}{gvk.kind.lower()}-{gvk.version}.{gvk.group or 'core'}",
        "rules": [
            {
                "apiGroups": [gvk.group],
                "apiVersions": [gvk.version],
                "operations": operations,
                "resources": [reg.plural],
                "scope": "Namespaced" if reg.namespaced else "Cluster",
            }
        ],
        "sideEffects": "None",
        "timeoutSeconds": timeout_seconds,
    }


def webhook_configurations(
    name: str,
    registrations: Sequence[WebhookRegistration],
    *,
    service: ServiceReference | None = None,
    url: str | None = None,
    ca_bundle: bytes | None = None,
    timeout_seconds: int = 10,
) -> list[Object]:
    """The Mutating and Validating WebhookConfigurations named ``name`` (each only when it has
    a webhook). ``url`` is the server's base (``https://127.0.0.1:9443``).

    Raises:
        ValueError: neither or both of ``service`` and ``url``.
    """
    mutating: list[Object] = []
    validating: list[Object] = []
    for reg in registrations:
        if reg.mutate_path:
            cc = _client_config(reg.mutate_path, service, url, ca_bundle)
            mutating.append(
                _webhook("m", reg, reg.mutate_path, ["CREATE", "UPDATE"], cc, timeout_seconds)
            )
        if reg.validate_path:
            ops = ["CREATE", "UPDATE", *(["DELETE"] if reg.validate_delete else [])]
            cc = _client_config(reg.validate_path, service, url, ca_bundle)
            validating.append(_webhook("v", reg, reg.validate_path, ops, cc, timeout_seconds))
    out: list[Object] = []
    for kind, hooks in (
        ("MutatingWebhookConfiguration", mutating),
        ("ValidatingWebhookConfiguration", validating),
    ):
        if hooks:
            out.append(
                {
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": kind,
                    "metadata": {"name": name},
                    "webhooks": sorted(hooks, key=lambda h: str(h["name"])),
                }
            )
    return out


def conversion_stanza(
    *,
    service: ServiceReference | None = None,
    url: str | None = None,
    ca_bundle: bytes | None = None,
    path: str = "/convert",
) -> Object:
    """A CRD's ``spec.conversion`` for a conversion webhook (``strategy: Webhook``)."""
    return {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": _client_config(path, service, url, ca_bundle),
            "conversionReviewVersions": ["v1"],
        },
    }
