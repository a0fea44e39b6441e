"""Generated webhook configurations and conversion stanza; the committed example manifests
must be what the generator writes (run `python -m examples.widgets manifests` to update)."""

from __future__ import annotations

import base64

import pytest

from aimctl.client import GVK
from aimctl.webhook import (
    ServiceReference,
    WebhookRegistration,
    conversion_stanza,
    webhook_configurations,
)
from examples.widgets.setup import MANIFESTS_DIR, render_manifests

KIND = GVK("example.dev", "v1", "Thing")
REG = WebhookRegistration(
    KIND, "things", mutate_path="/mutate-x", validate_path="/validate-x", validate_delete=True
)


def test_the_committed_example_manifests_have_not_drifted() -> None:
    planned = render_manifests()
    committed = {p.name: p.read_text() for p in MANIFESTS_DIR.glob("*.yaml")}
    assert committed == planned, "run `python -m examples.widgets manifests`"


def test_configurations_by_url_with_ca_bundle() -> None:
    mutating, validating = webhook_configurations(
        "things", [REG], url="https://127.0.0.1:9443/", ca_bundle=b"PEM"
    )
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    hook = mutating["webhooks"][0]
    assert hook["clientConfig"] == {
        "url": "https://127.0.0.1:9443/mutate-x",
        "caBundle": base64.b64encode(b"PEM").decode(),
    }
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["admissionReviewVersions"] == ["v1"] and hook["sideEffects"] == "None"
    assert validating["webhooks"][0]["rules"][0]["operations"] == ["CREATE", "UPDATE", "DELETE"]


def test_only_configurations_with_webhooks_are_generated() -> None:
    only_validating = WebhookRegistration(KIND, "things", validate_path="/v")
    docs = webhook_configurations("t", [only_validating], service=ServiceReference("s", "ns"))
    assert [d["kind"] for d in docs] == ["ValidatingWebhookConfiguration"]
    assert docs[0]["webhooks"][0]["clientConfig"] == {
        "service": {"name": "s", "namespace": "ns", "path": "/v", "port": 443}
    }


def test_exactly_one_of_service_and_url() -> None:
    with pytest.raises(ValueError):
        webhook_configurations("t", [REG])
    with pytest.raises(ValueError):
        conversion_stanza(service=ServiceReference("s", "ns"), url="https://x")
    assert conversion_stanza(url="https://x:1")["webhook"] == {
        "clientConfig": {"url": "https://x:1/convert"},
        "conversionReviewVersions": ["v1"],
    }
