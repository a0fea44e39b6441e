"""Client write semantics against a scripted transport: request shapes and what is retried."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from aimctl.client import (
    GVK,
    Client,
    Conflict,
    Resource,
    RESTMapper,
    ServerError,
    TransportError,
    api_error_from_status,
)

CM = GVK("", "v1", "ConfigMap")


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any] | None
    body: Any
    content_type: str | None


@dataclass
class ScriptedRest:
    """Answers requests from a script: an exception to raise or a dict to return, in order."""

    script: list[Any] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        self.calls.append(Call(method, path, params, body, content_type))
        answer = self.script.pop(0) if self.script else {}
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)


class NoCache:
    async def informers_for(self, gvk: GVK) -> Sequence[Any]:
        return []


def client(rest: ScriptedRest) -> Client:
    mapper = RESTMapper(rest)  # type: ignore[arg-type]
    mapper.add(Resource(CM, "configmaps", True))
    return Client(rest, mapper, NoCache(), field_manager="test-manager", retry_attempts=4)  # type: ignore[arg-type]


def err(status: int) -> Exception:
    return api_error_from_status(
        status, {"kind": "Status", "code": status, "message": f"HTTP {status}"}
    )


CM_OBJ = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "a", "namespace": "ns"},
    "data": {"k": "v"},
}


async def test_apply_is_a_server_side_apply_patch_with_the_field_manager_and_force() -> None:
    rest = ScriptedRest()
    await client(rest).apply(CM_OBJ)
    (call,) = rest.calls
    assert (call.method, call.path) == ("PATCH", "/api/v1/namespaces/ns/configmaps/a")
    assert call.params == {"fieldManager": "test-manager", "force": "true"}
    assert call.content_type == "application/apply-patch+yaml"


async def test_apply_status_targets_the_status_subresource() -> None:
    rest = ScriptedRest()
    await client(rest).apply_status(CM_OBJ)
    assert rest.calls[0].path == "/api/v1/namespaces/ns/configmaps/a/status"


async def test_transient_failures_are_retried_for_idempotent_writes() -> None:
    rest = ScriptedRest([err(503), TransportError("connection reset"), err(429), {"ok": True}])
    assert await client(rest).apply(CM_OBJ) == {"ok": True}
    assert len(rest.calls) == 4


async def test_retries_give_up_after_the_attempt_limit() -> None:
    rest = ScriptedRest([err(500)] * 10)
    with pytest.raises(ServerError):
        await client(rest).apply(CM_OBJ)
    assert len(rest.calls) == 4


async def test_create_is_retried_only_when_throttled() -> None:
    rest = ScriptedRest([err(429), {"created": True}])
    assert await client(rest).create(CM_OBJ) == {"created": True}
    rest = ScriptedRest([err(503)])
    with pytest.raises(ServerError):
        await client(rest).create(CM_OBJ)
    assert len(rest.calls) == 1  # a 5xx on create may have created it: not blindly retried


async def test_a_guarded_patch_raises_conflict_instead_of_retrying() -> None:
    rest = ScriptedRest([err(409)])
    with pytest.raises(Conflict):
        await client(rest).patch(
            CM, "a", "ns", {"metadata": {"resourceVersion": "5", "finalizers": []}}
        )
    assert len(rest.calls) == 1


async def test_mutate_rereads_and_retries_on_conflict() -> None:
    live = {**CM_OBJ, "metadata": {**CM_OBJ["metadata"], "resourceVersion": "1"}}  # type: ignore[dict-item]
    rest = ScriptedRest([live, err(409), live, {"updated": True}])

    def add_label(obj: dict[str, Any]) -> bool:
        obj["metadata"]["labels"] = {"x": "y"}
        return True

    assert await client(rest).mutate(CM, "a", "ns", add_label) == {"updated": True}
    assert [c.method for c in rest.calls] == ["GET", "PUT", "GET", "PUT"]
    assert rest.calls[3].body["metadata"]["labels"] == {"x": "y"}
    assert "labels" not in live["metadata"]  # the caller's copy is untouched


async def test_mutate_without_changes_makes_no_write() -> None:
    rest = ScriptedRest([CM_OBJ])
    await client(rest).mutate(CM, "a", "ns", lambda obj: False)
    assert [c.method for c in rest.calls] == ["GET"]


async def test_delete_reports_already_gone_and_sends_preconditions() -> None:
    rest = ScriptedRest([err(404)])
    assert await client(rest).delete(CM, "a", "ns") is False
    rest = ScriptedRest([{}])
    assert await client(rest).delete(CM, "a", "ns", propagation_policy="Orphan", uid="u1") is True
    assert rest.calls[0].body == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Orphan",
        "preconditions": {"uid": "u1"},
    }
