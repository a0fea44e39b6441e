"""Test doubles for informers (client-go's FakeControllerSource, with failure injection).

``FakeListerWatcher`` is an in-memory API server for one kind: resourceVersions, paginated
lists with continue tokens, watches that replay history from a resourceVersion, bookmarks,
streaming lists (``sendInitialEvents``), compaction (410 Gone) and injected list/watch failures.
Pass it to ``SharedInformer`` or ``Reflector`` instead of a ``RestListerWatcher``.

Deterministic: nothing sleeps. Pump the event loop with ``until()``; pass ``RecordingSleep`` or
``GatedSleep`` as the informer's ``sleep`` to observe and control backoff and resync waits.
Not for production use.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aimctl.client import Gone, Invalid, Object, RestClient, WatchEvent, WatchEventType
from aimctl.informers._frozen import thaw
from aimctl.informers._informer import SharedInformer
from aimctl.informers._reflector import INITIAL_EVENTS_END

__all__ = [
    "FakeListerWatcher",
    "FakeStream",
    "GatedSleep",
    "RecordingSleep",
    "assert_store_matches_server",
    "eventually",
    "list_all",
    "until",
]

_END = object()


async def until(cond: Callable[[], bool], *, steps: int = 10_000) -> None:
    """Yield to the loop until ``cond()`` holds (fails after ``steps`` turns, no wall time)."""
    for _ in range(steps):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


class RecordingSleep:
    """A ``sleep`` that records the delay and returns at the next loop turn."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


class GatedSleep:
    """A ``sleep`` that waits until the test releases it (for timers such as resync)."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._gates: list[asyncio.Event] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        gate = asyncio.Event()
        self._gates.append(gate)
        await gate.wait()

    @property
    def waiting(self) -> int:
        return sum(1 for g in self._gates if not g.is_set())

    def release(self) -> None:
        for g in self._gates:
            g.set()


class FakeStream:
    def __init__(self, server: FakeListerWatcher) -> None:
        self._server = server
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    def push(self, etype: WatchEventType, obj: Object) -> None:
        self.queue.put_nowait(WatchEvent(etype, copy.deepcopy(obj)))

    def fail(self, error: BaseException) -> None:
        self.queue.put_nowait(error)

    def end(self) -> None:
        self.queue.put_nowait(_END)

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        item = await self.queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, WatchEvent)
        return item

    async def aclose(self) -> None:
        self.closed = True
        if self in self._server.streams:
            self._server.streams.remove(self)


class FakeListerWatcher:
    """One kind's objects and the history of changes, like etcd behind an API server."""

    kind = "v1/ConfigMap"

    def __init__(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        streaming: bool = False,
    ) -> None:
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector  # recorded only: the fake does not filter
        self.metadata_only = metadata_only  # recorded only: the fake serves whole objects
        self.streaming = streaming  # whether sendInitialEvents is supported
        self.rv = 100
        self.compacted = 0  # watches/lists at or below this RV get 410
        self.objects: dict[str, Object] = {}
        self.history: list[tuple[int, WatchEventType, Object]] = []
        self.streams: list[FakeStream] = []
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.list_errors: list[BaseException] = []  # raised by the next list calls, in order
        self.watch_errors: list[BaseException] = []  # raised by the next watch calls, in order
        self.continue_expired = False  # the next continue token is rejected with 410

    # -- mutations --------------------------------------------------------------------------

    def _record(self, etype: WatchEventType, obj: Object) -> None:
        self.history.append((self.rv, etype, copy.deepcopy(obj)))
        for s in list(self.streams):
            s.push(etype, obj)

    def create(
        self,
        name: str,
        namespace: str = "default",
        *,
        labels: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        owner_uid: str | None = None,
        extra_meta: dict[str, Any] | None = None,
    ) -> Object:
        self.rv += 1
        md: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": str(self.rv),
        }
        if labels:
            md["labels"] = dict(labels)
        if owner_uid:
            md["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "X", "name": "o", "uid": owner_uid, "controller": True}
            ]
        md.update(extra_meta or {})
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": dict(data or {})}
        self.objects[f"{namespace}/{name}"] = obj
        self._record("ADDED", obj)
        return obj

    def update(self, key: str, data: dict[str, str]) -> Object:
        self.rv += 1
        obj = copy.deepcopy(self.objects[key])
        obj["data"] = dict(data)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        self._record("MODIFIED", obj)
        return obj

    def delete(self, key: str) -> Object:
        self.rv += 1
        obj = self.objects.pop(key)
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._record("DELETED", obj)
        return obj

    def bookmark(self) -> None:
        for s in list(self.streams):
            s.push("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": str(self.rv)}})

    def compact(self) -> None:
        self.compacted = self.rv

    def silent_delete(self, key: str) -> None:
        """Delete without telling watchers (a change missed while disconnected)."""
        self.rv += 1
        self.objects.pop(key)
        self.history.append((self.rv, "DELETED", {"metadata": {"name": key}}))

    def silent_create(self, name: str, namespace: str = "default") -> None:
        streams, self.streams = self.streams, []
        self.create(name, namespace)
        self.streams = streams

    def sorted_objects(self) -> builtins.list[Object]:
        return [self.objects[k] for k in sorted(self.objects)]

    # -- ListerWatcher ----------------------------------------------------------------------

    async def list(self, params: dict[str, str]) -> Object:
        self.calls.append(("list", dict(params)))
        if self.list_errors:
            raise self.list_errors.pop(0)
        limit = int(params.get("limit", "0")) or len(self.objects) or 1
        if "continue" in params:
            if self.continue_expired:
                self.continue_expired = False
                raise Gone(410, "Expired", "The provided continue parameter is too old")
            snapshot_rv, offset = (int(x) for x in params["continue"].split(":"))
        else:
            rv = params.get("resourceVersion")
            if rv and params.get("resourceVersionMatch") != "NotOlderThan":
                raise AssertionError("lists must use NotOlderThan with a resourceVersion")
            snapshot_rv, offset = self.rv, 0
        keys = sorted(self.objects)
        page = keys[offset : offset + limit]
        items = []
        for k in page:
            item = copy.deepcopy(self.objects[k])
            del item["apiVersion"], item["kind"]  # typed lists omit them
            items.append(item)
        md: dict[str, Any] = {"resourceVersion": str(snapshot_rv)}
        if offset + limit < len(keys):
            md["continue"] = f"{snapshot_rv}:{offset + limit}"
        return {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": md, "items": items}

    async def watch(
        self, params: dict[str, str], *, inactivity_timeout: float | None
    ) -> FakeStream:
        self.calls.append(("watch", dict(params)))
        if self.watch_errors:
            raise self.watch_errors.pop(0)
        stream = FakeStream(self)
        if params.get("sendInitialEvents") == "true":
            if not self.streaming:
                raise Invalid(422, "Invalid", "sendInitialEvents is forbidden")
            for k in sorted(self.objects):
                stream.push("ADDED", self.objects[k])
            stream.push(
                "BOOKMARK",
                {
                    "kind": "ConfigMap",
                    "metadata": {
                        "resourceVersion": str(self.rv),
                        "annotations": {INITIAL_EVENTS_END: "true"},
                    },
                },
            )
        else:
            rv = int(params["resourceVersion"])
            if rv < self.compacted:
                stream.fail(Gone(410, "Expired", f"too old resource version: {rv}"))
                return stream
            for hrv, etype, obj in self.history:
                if hrv > rv and "uid" in obj.get("metadata", {}):
                    stream.push(etype, obj)
        self.streams.append(stream)
        return stream

    @property
    def open_streams(self) -> int:
        return len(self.streams)

    def watch_calls(self) -> builtins.list[dict[str, str]]:
        return [p for op, p in self.calls if op == "watch"]

    def list_calls(self) -> builtins.list[dict[str, str]]:
        return [p for op, p in self.calls if op == "list"]


# -- helpers for tests against a real API server -----------------------------------------


async def eventually(cond: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
    """Poll ``cond`` every 20 ms until it holds (integration tests run on real time)."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within}s: {what or cond}")
        await asyncio.sleep(0.02)


async def list_all(rest: RestClient, path: str) -> dict[str, Object]:
    """Every object at ``path`` (all pages), keyed like the store, managedFields stripped."""
    out: dict[str, Object] = {}
    params: dict[str, str] = {"limit": "500"}
    while True:
        page = await rest.request("GET", path, params=params)
        kind = page["kind"].removesuffix("List")
        for item in page["items"]:
            item.setdefault("apiVersion", page["apiVersion"])
            item.setdefault("kind", kind)
            item["metadata"].pop("managedFields", None)
            md = item["metadata"]
            out[f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]] = item
        cont = page["metadata"].get("continue")
        if not cont:
            return out
        params = {"limit": "500", "continue": cont}


def _cached(informer: SharedInformer) -> dict[str, Object]:
    return {key: thaw(informer.store.get(key)) for key in informer.store.keys()}  # noqa: SIM118


async def assert_store_matches_server(
    informer: SharedInformer, rest: RestClient, path: str, within: float = 30.0
) -> None:
    """The store converges to exactly what a fresh list returns (objects compared whole)."""
    deadline = time.monotonic() + within
    while True:
        fresh = await list_all(rest, path)
        if _cached(informer) == fresh:
            return
        if time.monotonic() > deadline:
            missing = sorted(set(fresh) - set(informer.store.keys()))
            extra = sorted(set(informer.store.keys()) - set(fresh))
            stale = sorted(
                k for k in fresh if k in informer.store and _cached(informer)[k] != fresh[k]
            )
            raise AssertionError(
                f"store != fresh list: missing={missing} extra={extra} stale={stale}"
            )
        await asyncio.sleep(0.05)
