"""Cached reads: namespace scope and read-your-own-writes, over real informer stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from aimctl.client import CONFIGMAP, GVK, Client, Resource, RESTMapper, UnknownNamespace
from aimctl.client._recent import RecentWrites
from aimctl.informers import Store, freeze
from aimctl.informers._store import StoreWriter, object_key


@dataclass
class Informer:
    """Stands in for a synced SharedInformer: a namespace scope and a real store."""

    namespace: str | None
    store: Store = field(default_factory=Store)
    has_synced: bool = True

    async def wait_for_sync(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        return None

    def put(self, obj: dict[str, Any]) -> None:
        StoreWriter(self.store).upsert(object_key(obj), freeze(obj))


@dataclass
class Cache:
    informers: list[Informer]

    async def informers_for(self, gvk: GVK) -> list[Informer]:
        return self.informers


class Answer:
    """A RestClient whose every request returns ``answer``."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    async def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        return dict(self.answer)

    async def request_with_body(
        self, method: str, path: str, **_: Any
    ) -> tuple[dict[str, Any], bytes]:
        return dict(self.answer), orjson.dumps(self.answer) + b"\n"


def cm(name: str, rv: str, labels: dict[str, str] | None = None, ns: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "labels": labels or {},
        },
    }


def client(cache: Cache, answer: dict[str, Any] | None = None) -> Client:
    rest = Answer(answer or {})
    mapper = RESTMapper(rest)  # type: ignore[arg-type]
    mapper.add(Resource(CONFIGMAP, "configmaps", True))
    return Client(rest, mapper, cache, field_manager="t", recent=RecentWrites())  # type: ignore[arg-type]


async def test_a_namespace_the_cache_does_not_watch_is_an_error_not_absence() -> None:
    c = client(Cache([Informer("a"), Informer("b")]))
    assert await c.get(CONFIGMAP, "x", "a") is None  # watched: really absent
    with pytest.raises(UnknownNamespace, match="unknown namespace 'c' for the cache") as e:
        await c.get(CONFIGMAP, "x", "c")
    assert e.value.watched == ("a", "b")
    with pytest.raises(UnknownNamespace):
        await c.list(CONFIGMAP, namespace="c")
    assert await c.list(CONFIGMAP) == []  # every watched namespace


async def test_a_cluster_wide_cache_answers_for_every_namespace() -> None:
    c = client(Cache([Informer(None)]))
    assert await c.get(CONFIGMAP, "x", "anything") is None


async def test_get_and_list_agree_on_a_write_the_cache_has_not_delivered() -> None:
    inf = Informer("a")
    inf.put(cm("relabelled", "1", {"app": "web"}))
    inf.put(cm("joined", "1", {"app": "db"}))
    inf.put(cm("untouched", "1", {"app": "web"}))
    cache = Cache([inf])
    c = client(cache, cm("relabelled", "2", {"app": "db"}))
    await c.apply(cm("relabelled", "", {"app": "db"}))
    c.rest.answer = cm("joined", "2", {"app": "web"})  # type: ignore[attr-defined]
    await c.apply(cm("joined", "", {"app": "web"}))

    got = await c.get(CONFIGMAP, "relabelled", "a")
    assert got is not None
    assert got["metadata"]["labels"] == {"app": "db"}
    listed = {o["metadata"]["name"]: o for o in await c.list(CONFIGMAP, "a")}
    assert listed["relabelled"] == got
    web = sorted(o["metadata"]["name"] for o in await c.list(CONFIGMAP, "a", "app=web"))
    assert web == ["joined", "untouched"]
    with pytest.raises(TypeError):
        got["metadata"]["labels"]["app"] = "mutated"  # frozen, like every cached read
