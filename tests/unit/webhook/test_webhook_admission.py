"""Defaulting and validating handlers: controller-runtime's CustomDefaulter/CustomValidator."""

from __future__ import annotations

from typing import Any

import pytest

from aimctl.client import GVK, Invalid, Object
from aimctl.metrics import Counter
from aimctl.webhook import (
    AdmissionRequest,
    DefaultingHandler,
    Denied,
    Operation,
    ValidatingHandler,
    Warnings,
)
from tests.unit.webhook.jsonpatch_apply import apply_patch

KIND = GVK("example.dev", "v1", "Thing")


def request(
    op: Operation, obj: Object | None = None, old: Object | None = None
) -> AdmissionRequest:
    return AdmissionRequest(
        uid="u",
        kind=KIND,
        resource=("example.dev", "v1", "things"),
        operation=op,
        object=obj,
        old_object=old,
    )


async def set_replicas(req: AdmissionRequest, obj: Object) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)


async def test_defaulter_answers_with_the_patch_of_its_changes() -> None:
    obj = {"metadata": {"name": "a"}, "spec": {}}
    resp = await DefaultingHandler(set_replicas).handle(request("CREATE", obj))
    assert resp.allowed and resp.patch is not None
    assert apply_patch(obj, resp.patch) == {"metadata": {"name": "a"}, "spec": {"replicas": 1}}
    assert obj == {"metadata": {"name": "a"}, "spec": {}}  # the request is left alone


async def test_defaulter_without_changes_sends_no_patch() -> None:
    obj = {"spec": {"replicas": 3}}
    resp = await DefaultingHandler(set_replicas).handle(request("UPDATE", obj, obj))
    assert resp.allowed and not resp.patch


async def test_defaulter_object_with_a_default_method() -> None:
    class D:
        async def default(self, req: AdmissionRequest, obj: Object) -> None:
            obj["x"] = req.dry_run

    resp = await DefaultingHandler(D()).handle(request("CREATE", {}))
    assert resp.patch == [{"op": "add", "path": "/x", "value": False}]


async def test_delete_is_allowed_without_calling_the_defaulter() -> None:
    async def boom(req: AdmissionRequest, obj: Object) -> None:
        raise AssertionError("called")

    resp = await DefaultingHandler(boom).handle(request("DELETE", None, {"a": 1}))
    assert resp.allowed and resp.code == 200


async def test_a_denial_from_the_defaulter_is_a_403() -> None:
    async def deny(req: AdmissionRequest, obj: Object) -> None:
        raise Denied("nope", warnings=["careful"])

    resp = await DefaultingHandler(deny).handle(request("CREATE", {}))
    assert resp.warnings == ("careful",)
    assert (resp.allowed, resp.code, resp.reason, resp.message) == (
        False,
        403,
        "Forbidden",
        "nope",
    )


async def test_an_unexpected_error_is_a_500_and_counted() -> None:
    async def bug(req: AdmissionRequest, obj: Object) -> None:
        raise KeyError("spec")

    panics = Counter()
    resp = await DefaultingHandler(bug, panics=panics).handle(request("CREATE", {}))
    assert not resp.allowed and resp.code == 500
    assert panics.value == 1


class Recorder:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.error = error

    async def _done(self, name: str, args: Any) -> Warnings:
        self.calls.append((name, args))
        if self.error is not None:
            raise self.error
        return [f"{name} ok"]

    async def validate_create(self, req: AdmissionRequest, obj: Object) -> Warnings:
        return await self._done("create", obj)

    async def validate_update(self, req: AdmissionRequest, old: Object, new: Object) -> Warnings:
        return await self._done("update", (old, new))

    async def validate_delete(self, req: AdmissionRequest, obj: Object) -> Warnings:
        return await self._done("delete", obj)


@pytest.mark.parametrize(
    ("op", "obj", "old", "call"),
    [
        ("CREATE", {"n": 1}, None, ("create", {"n": 1})),
        ("UPDATE", {"n": 2}, {"n": 1}, ("update", ({"n": 1}, {"n": 2}))),
        ("DELETE", None, {"n": 1}, ("delete", {"n": 1})),
    ],
)
async def test_validator_is_called_per_operation_with_the_old_object(
    op: Operation, obj: Object | None, old: Object | None, call: tuple[str, Any]
) -> None:
    v = Recorder()
    resp = await ValidatingHandler(v).handle(request(op, obj, old))
    assert v.calls == [call]
    assert resp.allowed and resp.warnings == (f"{call[0]} ok",)


async def test_connect_is_allowed_without_calling_the_validator() -> None:
    v = Recorder()
    assert (await ValidatingHandler(v).handle(request("CONNECT"))).allowed
    assert v.calls == []


async def test_an_api_error_becomes_the_status() -> None:
    v = Recorder(Invalid(422, "Invalid", "spec.n: must be even"))
    resp = await ValidatingHandler(v).handle(request("CREATE", {"n": 1}))
    assert (resp.allowed, resp.code, resp.reason, resp.message) == (
        False,
        422,
        "Invalid",
        "spec.n: must be even",
    )


async def test_an_update_without_the_old_object_is_a_400() -> None:
    resp = await ValidatingHandler(Recorder()).handle(request("UPDATE", {"n": 1}))
    assert not resp.allowed and resp.code == 400
