"""What the client resends, against a real API server behind a proxy that loses answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aimctl.client import CONFIGMAP, Client, TransportError
from tests.integration.client.conftest import cached_client
from tests.integration.client.faulty_proxy import FaultyProxy

FINALIZER = "test.aimctl.dev/cleanup"


def configmap(name: str, namespace: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "data": {"k": "v"},
    }


async def live(client: Client, name: str, namespace: str) -> dict[str, Any] | None:
    return await client.get_live(CONFIGMAP, name, namespace)


async def test_a_json_patch_whose_answer_was_lost_is_not_resent(
    proxy: FaultyProxy, namespace: str
) -> None:
    async with cached_client(proxy.config(), namespace) as client:
        await client.create(configmap("a", namespace))
        add = [{"op": "add", "path": "/metadata/finalizers", "value": ["test.aimctl.dev/other"]}]
        add_more = [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]
        await client.patch(CONFIGMAP, "a", namespace, add, patch_type="json")
        proxy.once("PATCH", "/configmaps/a", "drop")
        with pytest.raises(TransportError):
            await client.patch(CONFIGMAP, "a", namespace, add_more, patch_type="json")
        got = await live(client, "a", namespace)
        assert got is not None
        # The server applied the lost patch once; resending it would have added a second copy.
        assert got["metadata"]["finalizers"] == ["test.aimctl.dev/other", FINALIZER]
        assert [(action, method) for action, method, _ in proxy.applied] == [("drop", "PATCH")]
        assert sum(1 for m, t in proxy.forwarded if m == "PATCH") == 2  # not three
        await client.patch(
            CONFIGMAP, "a", namespace, {"metadata": {"finalizers": None}}, patch_type="merge"
        )


async def test_add_finalizer_adds_it_once_when_its_answer_is_lost(
    proxy: FaultyProxy, namespace: str
) -> None:
    async with cached_client(proxy.config(), namespace) as client:
        created = await client.create(configmap("a", namespace))
        proxy.once("PATCH", "/configmaps/a", "drop")
        got = await client.add_finalizer(created, FINALIZER)
        assert got["metadata"]["finalizers"] == [FINALIZER]
        after = await live(client, "a", namespace)
        assert after is not None
        assert after["metadata"]["finalizers"] == [FINALIZER]
        assert proxy.applied  # the fault did happen

        # Removing the last finalizer of a deleting object lets the server delete it at once;
        # the answer to that is lost too: the retry finds it gone, and that is success.
        assert await client.delete(CONFIGMAP, "a", namespace) is True
        deleting = await live(client, "a", namespace)
        assert deleting is not None
        assert deleting["metadata"].get("deletionTimestamp")
        proxy.once("PATCH", "/configmaps/a", "drop")
        removed = await client.remove_finalizer(deleting, FINALIZER)
        assert not removed["metadata"].get("finalizers")
        assert await live(client, "a", namespace) is None


async def test_a_delete_whose_answer_was_lost_reports_its_own_delete(
    proxy: FaultyProxy, namespace: str
) -> None:
    async with cached_client(proxy.config(), namespace) as client:
        created = await client.create(configmap("a", namespace))
        proxy.once("DELETE", "/configmaps/a", "drop")
        assert await client.delete(CONFIGMAP, "a", namespace, uid=created["metadata"]["uid"])
        assert await live(client, "a", namespace) is None
        assert sum(1 for m, _ in proxy.forwarded if m == "DELETE") == 2  # resent (guarded)

        await client.create(configmap("b", namespace))
        proxy.once("DELETE", "/configmaps/b", "drop")
        with pytest.raises(TransportError):  # unconditional: not resent, outcome unknown
            await client.delete(CONFIGMAP, "b", namespace)
        assert await live(client, "b", namespace) is None  # it had landed
        assert sum(1 for m, _ in proxy.forwarded if m == "DELETE") == 3


async def test_a_throttled_create_waits_for_retry_after_and_creates_once(
    proxy: FaultyProxy, namespace: str
) -> None:
    async with cached_client(proxy.config(), namespace) as client:
        proxy.once("POST", "/configmaps", "throttle", retry_after=2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.create(configmap("a", namespace))
        assert loop.time() - started >= 1.9
        assert proxy.applied and proxy.applied[0][0] == "throttle"
        assert [m for m, _ in proxy.forwarded if m == "POST"] == ["POST"]
