"""A predicate or mapper that raises never loses the event: logged with the object, counted,
and (mappers) mapped again with backoff until it maps."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from structlog.testing import capture_logs

from aimctl.controller import EnqueueHandler, PredicateFuncs, Request, for_object
from aimctl.metrics import Counter


def obj(name: str, *, rv: str = "1", target: str = "") -> dict[str, Any]:
    return {
        "kind": "Thing",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": rv,
            "labels": {"target": target} if target else {},
        },
    }


@dataclass
class FakeQueue:
    added: list[tuple[Request, int]] = field(default_factory=list)
    shutting_down: bool = False

    def add(self, item: Request, priority: int = 0) -> None:
        self.added.append((item, priority))


async def until(cond, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Flaky:
    """Maps ``target`` labels to keys; raises the first ``failures`` calls (a cache filling)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self, o: Any) -> list[Request]:
        if self.failures:
            self.failures -= 1
            raise KeyError("index not ready")
        return [Request("ns", o["metadata"]["labels"]["target"])]


async def test_a_mapper_that_raises_is_retried_until_the_keys_are_enqueued() -> None:
    q = FakeQueue()
    errors = Counter()
    h = EnqueueHandler(q, Flaky(2), low_priority=-100, controller="c", errors=errors)
    with capture_logs() as logs:
        h.on_add(obj("a", target="t"), False)  # must not raise into the informer
        assert q.added == []
        await until(lambda: q.added)  # retried after 0.1 s, then 0.2 s
    assert q.added == [(Request("ns", "t"), 0)]
    assert errors.value == 2
    first = logs[0]
    assert first["event"] == "Event mapper raised; the object is mapped again later"
    assert (first["controller"], first["kind"], first["namespace"], first["name"]) == (
        "c",
        "Thing",
        "ns",
        "a",
    )
    assert isinstance(first["exc_info"], KeyError)


async def test_a_failed_update_retries_both_versions_so_old_and_new_targets_wake() -> None:
    q = FakeQueue()
    h = EnqueueHandler(q, Flaky(1), low_priority=-100)
    with capture_logs():
        # new maps first and fails; old maps fine at once, new is retried
        h.on_update(obj("a", rv="1", target="old"), obj("a", rv="2", target="new"))
        assert q.added == [(Request("ns", "old"), 0)]
        await until(lambda: len(q.added) == 2)
    assert q.added[1] == (Request("ns", "new"), 0)


async def test_retries_keep_the_event_priority_and_stop_when_the_queue_shuts_down() -> None:
    q = FakeQueue()
    h = EnqueueHandler(q, Flaky(1), low_priority=-100)
    with capture_logs():
        h.on_add(obj("a", target="t"), True)  # initial list: low priority
        await until(lambda: q.added)
    assert q.added == [(Request("ns", "t"), -100)]

    q2 = FakeQueue()
    h2 = EnqueueHandler(q2, Flaky(100), low_priority=-100)
    with capture_logs():
        h2.on_add(obj("b", target="t"), False)
        q2.shutting_down = True
        await asyncio.sleep(0.3)
    assert q2.added == []
    assert not h2._failed  # nothing left scheduled


async def test_a_predicate_that_raises_lets_the_event_through() -> None:
    def broken(o: Any) -> bool:
        raise ValueError("bug")

    q = FakeQueue()
    errors = Counter()
    h = EnqueueHandler(
        q, for_object, [PredicateFuncs(on_create=broken)], low_priority=-1, errors=errors
    )
    with capture_logs() as logs:
        h.on_add(obj("a"), False)
    assert q.added == [(Request("ns", "a"), 0)]
    assert errors.value == 1
    assert logs[0]["event"] == "Event predicate raised; the event passes it"
    assert logs[0]["name"] == "a"
