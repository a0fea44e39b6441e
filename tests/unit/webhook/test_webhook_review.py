"""The AdmissionReview v1 contract: what the apiserver sends, what it gets back."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from aimctl.client import GVK
from aimctl.webhook import (
    AdmissionResponse,
    UserInfo,
    allowed,
    denied,
    errored,
    parse_admission_review,
    render_admission_review,
)

# An UPDATE as kube-apiserver 1.36 sends it (dry run, old object, user info, options).
UPDATE: dict[str, Any] = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "widgets.example.aimctl.dev", "version": "v2", "kind": "Widget"},
        "resource": {
            "group": "widgets.example.aimctl.dev",
            "version": "v2",
            "resource": "widgets",
        },
        "requestKind": {"group": "widgets.example.aimctl.dev", "version": "v1", "kind": "Widget"},
        "requestResource": {
            "group": "widgets.example.aimctl.dev",
            "version": "v1",
            "resource": "widgets",
        },
        "name": "w",
        "namespace": "ns",
        "operation": "UPDATE",
        "userInfo": {
            "username": "admin",
            "uid": "u-1",
            "groups": ["system:masters", "system:authenticated"],
            "extra": {"scopes": ["a"]},
        },
        "object": {"metadata": {"name": "w"}, "spec": {"n": 2}},
        "oldObject": {"metadata": {"name": "w"}, "spec": {"n": 1}},
        "dryRun": True,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
    },
}


def test_parse_reads_every_field_of_the_request() -> None:
    req = parse_admission_review(UPDATE)
    assert req.uid == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert req.kind == GVK("widgets.example.aimctl.dev", "v2", "Widget")
    assert req.request_kind == GVK("widgets.example.aimctl.dev", "v1", "Widget")
    assert req.resource == ("widgets.example.aimctl.dev", "v2", "widgets")
    assert (req.operation, req.name, req.namespace) == ("UPDATE", "w", "ns")
    assert req.dry_run is True
    assert req.object == {"metadata": {"name": "w"}, "spec": {"n": 2}}
    assert req.old_object == {"metadata": {"name": "w"}, "spec": {"n": 1}}
    assert req.user_info == UserInfo(
        "admin", "u-1", ("system:masters", "system:authenticated"), {"scopes": ["a"]}
    )
    assert req.options is not None and req.options["kind"] == "UpdateOptions"


def test_dry_run_defaults_to_false() -> None:
    review = json.loads(json.dumps(UPDATE))
    del review["request"]["dryRun"]
    assert parse_admission_review(review).dry_run is False


@pytest.mark.parametrize(
    "review",
    [
        {},
        {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
        {**UPDATE, "request": {**UPDATE["request"], "operation": "PATCH"}},
    ],
)
def test_parse_refuses_what_is_not_a_v1_review(review: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_admission_review(review)


def test_render_echoes_the_uid_and_encodes_the_patch() -> None:
    patch = [{"op": "add", "path": "/spec/replicas", "value": 1}]
    out = render_admission_review("u", AdmissionResponse(True, patch=patch))
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    resp = out["response"]
    assert resp["uid"] == "u" and resp["allowed"] is True
    assert resp["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(resp["patch"])) == patch


def test_responses_match_controller_runtime() -> None:
    assert render_admission_review("u", allowed())["response"] == {
        "uid": "u",
        "allowed": True,
        "status": {"code": 200},
    }
    assert render_admission_review("u", denied("no").with_warnings(["w"]))["response"] == {
        "uid": "u",
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": "no"},
        "warnings": ["w"],
    }
    assert errored(400, "bad").code == 400 and errored(400, "bad").reason == ""
