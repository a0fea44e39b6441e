"""Client write semantics against a scripted transport: request shapes and what is retried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
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
from aimctl.client._operations import merge_patch

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

    async def request_with_body(self, method: str, path: str, **kwargs: Any) -> tuple[Any, bytes]:
        answer = await self.request(method, path, **kwargs)
        return answer, orjson.dumps(answer) + b"\n"


class NoCache:
    async def informers_for(self, gvk: GVK) -> Sequence[Any]:
        return []


def client(rest: ScriptedRest) -> Client:
    mapper = RESTMapper(rest)  # type: ignore[arg-type]
    mapper.add(Resource(CM, "configmaps", True))
    return Client(rest, mapper, NoCache(), field_manager="test-manager", retry_attempts=4)  # type: ignore[arg-type]


def err(status: int, retry_after: str | None = None) -> Exception:
    return api_error_from_status(
        status,
        {"kind": "Status", "code": status, "message": f"HTTP {status}"},
        retry_after_header=retry_after,
    )


LOST = TransportError("the answer was lost")  # sent; the server may have applied it
REFUSED = TransportError("connection refused", request_sent=False)


CM_OBJ = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "a", "namespace": "ns"},
    "data": {"k": "v"},
}


def cm_with(**meta: Any) -> dict[str, Any]:
    """CM_OBJ with more metadata (a fresh copy)."""
    return {**CM_OBJ, "metadata": {"name": "a", "namespace": "ns", **meta}}


async def test_apply_is_a_server_side_apply_patch_that_forces_only_when_asked() -> None:
    rest = ScriptedRest()
    await client(rest).apply(CM_OBJ)
    await client(rest).apply(CM_OBJ, force=True)
    first, second = rest.calls
    assert (first.method, first.path) == ("PATCH", "/api/v1/namespaces/ns/configmaps/a")
    assert first.params == {"fieldManager": "test-manager", "force": "false"}
    assert second.params == {"fieldManager": "test-manager", "force": "true"}
    assert first.content_type == "application/apply-patch+yaml"


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


async def test_create_is_resent_only_when_throttled_or_never_sent() -> None:
    rest = ScriptedRest([err(429), REFUSED, {"created": True}])
    assert await client(rest).create(CM_OBJ) == {"created": True}
    assert len(rest.calls) == 3
    for failure in (err(503), err(503, retry_after="1"), LOST):
        rest = ScriptedRest([failure])
        with pytest.raises(type(failure)):
            await client(rest).create(CM_OBJ)
        assert len(rest.calls) == 1  # it may have created it: not blindly resent


async def test_a_json_patch_adding_a_finalizer_is_not_resent_after_a_lost_answer() -> None:
    add = [{"op": "add", "path": "/metadata/finalizers/-", "value": "x.io/f"}]
    rest = ScriptedRest([LOST, {}])
    with pytest.raises(TransportError):
        await client(rest).patch(CM, "a", "ns", add, patch_type="json")
    assert len(rest.calls) == 1
    guarded = [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}, *add]
    rest = ScriptedRest([LOST, {}])
    await client(rest).patch(CM, "a", "ns", guarded, patch_type="json")
    assert len(rest.calls) == 2  # a guarded patch cannot apply twice
    rest = ScriptedRest([LOST, {}])
    await client(rest).patch(CM, "a", "ns", {"data": {"k": "v"}})
    assert len(rest.calls) == 2  # a merge patch applied twice is applied once


async def test_retry_after_is_honoured_for_429_and_for_5xx_of_idempotent_requests() -> None:
    for failure in (err(429, retry_after="1"), err(503, retry_after="1")):
        rest = ScriptedRest([failure, {"ok": True}])
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await client(rest).apply(CM_OBJ) == {"ok": True}
        assert loop.time() - started >= 0.95


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


async def test_a_delete_without_precondition_is_not_resent_after_a_lost_answer() -> None:
    rest = ScriptedRest([LOST, err(404)])
    with pytest.raises(TransportError):
        await client(rest).delete(CM, "a", "ns")
    assert len(rest.calls) == 1  # resent, it could delete a re-created object of that name


async def test_a_resent_delete_that_finds_the_object_gone_reports_its_own_delete() -> None:
    rest = ScriptedRest([LOST, err(404)])
    assert await client(rest).delete(CM, "a", "ns", uid="u1") is True
    assert [c.body["preconditions"] for c in rest.calls] == [{"uid": "u1"}] * 2
    rest = ScriptedRest([REFUSED, err(404)])
    assert await client(rest).delete(CM, "a", "ns") is False  # never sent: truly already gone


async def test_add_finalizer_is_guarded_and_not_duplicated_when_resent() -> None:
    obj = cm_with(resourceVersion="1")
    live = cm_with(resourceVersion="2", finalizers=["x.io/f"])
    rest = ScriptedRest([LOST, err(409), live])
    assert await client(rest).add_finalizer(obj, "x.io/f") == live
    assert [c.method for c in rest.calls] == ["PATCH", "PATCH", "GET"]
    assert rest.calls[0].body == {"metadata": {"finalizers": ["x.io/f"], "resourceVersion": "1"}}
    rest = ScriptedRest()
    assert await client(rest).add_finalizer(live, "x.io/f") is live
    assert rest.calls == []  # already there: no write


async def test_remove_finalizer_accepts_that_the_object_went_away() -> None:
    obj = cm_with(resourceVersion="1", finalizers=["x.io/f", "y.io/g"])
    rest = ScriptedRest([LOST, err(404)])
    gone = await client(rest).remove_finalizer(obj, "x.io/f")
    assert gone["metadata"]["finalizers"] == ["y.io/g"]
    assert obj["metadata"]["finalizers"] == ["x.io/f", "y.io/g"]  # the caller's copy is untouched


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
    rest = ScriptedRest([{}])
    await client(rest).delete(CM, "a", "ns", resource_version="9")
    assert rest.calls[0].body["preconditions"] == {"resourceVersion": "9"}


def test_merge_patch_holds_only_the_differences() -> None:
    before = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "gone": True}
    after = {"a": 1, "b": {"c": 2, "d": 4}, "e": [1, 2], "new": "x"}
    assert merge_patch(before, after) == {"b": {"d": 4}, "e": [1, 2], "new": "x", "gone": None}
    assert merge_patch(after, after) == {}
