"""The base contract (client-go's four properties): fair, stingy, re-add while processing,
shutdown. Black-box, through the public ``Queue``."""

from __future__ import annotations

import asyncio
import random

import pytest

import aimctl.workqueue as workqueue
from aimctl._internal.clock import ManualClock
from aimctl.workqueue import LOW_PRIORITY, Queue, ShutDown


async def settle() -> None:
    """Let woken tasks run (a few loop iterations; no wall-clock time involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


def new_queue() -> Queue[str]:
    return Queue(clock=ManualClock())


def test_public_names_are_exported_sorted() -> None:
    assert workqueue.__all__ == sorted(workqueue.__all__, key=lambda n: (not n.isupper(), n))
    for name in workqueue.__all__:
        assert getattr(workqueue, name) is not None
    assert LOW_PRIORITY == -100


async def test_add_then_get_hands_out_the_key() -> None:
    q = new_queue()
    q.add("a")
    assert len(q) == 1
    assert await q.get() == "a"
    assert len(q) == 0


async def test_fifo_within_one_priority() -> None:
    q = new_queue()
    for key in "abcde":
        q.add(key)
    assert [await q.get() for _ in range(5)] == list("abcde")


async def test_deduping_collapses_adds_before_processing() -> None:
    q = new_queue()
    q.add("a")
    q.add("b")
    q.add("a")
    q.add("a")
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["a", "b"]
    assert len(q) == 0


async def test_get_waits_until_a_key_is_added() -> None:
    q = new_queue()
    getter = asyncio.create_task(q.get())
    await settle()
    assert not getter.done()
    q.add("a")
    await settle()
    assert getter.result() == "a"


async def test_collapse_while_processing() -> None:
    q = new_queue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 1  # owed one hand-out
    second = asyncio.create_task(q.get())
    await settle()
    assert not second.done(), "a key must not be handed out while it is processed"
    q.done("a")
    await settle()
    assert second.result() == "a"
    assert len(q) == 0


async def test_re_add_while_processing_goes_to_the_tail() -> None:
    q = new_queue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("b")
    q.done("a")
    assert [await q.get(), await q.get()] == ["b", "a"]


async def test_done_for_a_key_not_handed_out_is_ignored() -> None:
    q = new_queue()
    q.add("a")
    q.done("a")  # queued, not processing: must not be queued twice
    q.done("zzz")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    q.done("a")  # done twice
    assert len(q) == 0


async def test_add_while_processing_then_done_hands_out_once() -> None:
    q = new_queue()
    q.add("a")
    key = await q.get()
    q.add(key)
    q.done(key)
    q.done(key)  # the second done refers to nothing in flight
    assert len(q) == 1
    assert await q.get() == "a"


async def test_higher_priority_first() -> None:
    q = new_queue()
    q.add("resync", priority=LOW_PRIORITY)
    q.add("change")
    q.add("urgent", priority=10)
    assert [await q.get() for _ in range(3)] == ["urgent", "change", "resync"]


async def test_re_add_keeps_the_higher_priority() -> None:
    q = new_queue()
    q.add("a", priority=LOW_PRIORITY)
    q.add("b")
    q.add("a", priority=5)  # raised: jumps ahead of b
    q.add("a", priority=LOW_PRIORITY)  # lowering is ignored
    assert [await q.get(), await q.get()] == ["a", "b"]
    assert len(q) == 0


async def test_raised_priority_joins_the_tail_of_its_new_priority() -> None:
    q = new_queue()
    q.add("low", priority=LOW_PRIORITY)
    q.add("x")
    q.add("low")  # now priority 0, behind x
    q.add("y")
    assert [await q.get() for _ in range(3)] == ["x", "low", "y"]


async def test_priority_of_a_parked_key_is_raised_too() -> None:
    q = new_queue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a", priority=LOW_PRIORITY)
    q.add("a", priority=3)
    q.add("b", priority=1)
    q.done("a")
    assert [await q.get(), await q.get()] == ["a", "b"]


async def test_never_two_workers_on_one_key_and_no_re_add_lost() -> None:
    # client-go's TestAddWhileProcessing, on asyncio: producers re-add every key while it is
    # being processed; each key must be processed again after its re-add, one worker at a time.
    q = new_queue()
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(20)]
    in_flight: set[str] = set()
    processed: dict[str, int] = dict.fromkeys(keys, 0)
    re_added: dict[str, int] = dict.fromkeys(keys, 0)
    all_processed = asyncio.Event()

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            assert key not in in_flight, f"{key} handed to two workers"
            in_flight.add(key)
            processed[key] += 1
            if re_added[key] < 3:
                re_added[key] += 1
                q.add(key)  # re-add while processing: must come back after done
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            in_flight.discard(key)
            q.done(key)
            if all(n == 4 for n in processed.values()):
                all_processed.set()

    workers = [asyncio.create_task(worker()) for _ in range(10)]
    for key in keys:
        q.add(key)
    await asyncio.wait_for(all_processed.wait(), timeout=10.0)
    assert len(q) == 0
    await q.shut_down_with_drain()
    await asyncio.gather(*workers)
    assert processed == dict.fromkeys(keys, 4)


async def test_len_counts_keys_parked_behind_done() -> None:
    q = new_queue()
    q.add("a")
    await q.get()
    assert len(q) == 0
    q.add("a")
    assert len(q) == 1


async def test_shutting_down_property() -> None:
    q = new_queue()
    seen = [q.shutting_down]
    q.shut_down()
    seen.append(q.shutting_down)
    q.shut_down()  # idempotent
    seen.append(q.shutting_down)
    assert seen == [False, True, True]


async def test_shut_down_ignores_later_adds() -> None:
    q = new_queue()
    q.shut_down()
    q.add("a")
    q.add_after("b", 1.0)
    q.add_rate_limited("c")
    assert len(q) == 0
    assert q.num_requeues("c") == 0  # the limiter was not consulted
    with pytest.raises(ShutDown):
        await q.get()


async def test_shut_down_hands_out_queued_keys_then_raises() -> None:
    q = new_queue()
    q.add("a")
    q.add("b")
    q.shut_down()
    assert [await q.get(), await q.get()] == ["a", "b"]
    with pytest.raises(ShutDown):
        await q.get()


async def test_shut_down_wakes_waiting_getters() -> None:
    q = new_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.shut_down()
    await settle()
    for getter in getters:
        assert isinstance(getter.exception(), ShutDown)


async def test_key_parked_at_shut_down_is_handed_out_after_done() -> None:
    # client-go: Done after ShutDown still queues a re-added key.
    q = new_queue()
    q.add("a")
    await q.get()
    q.add("a")
    q.shut_down()
    q.done("a")
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()


async def test_shut_down_with_drain_returns_at_once_when_idle() -> None:
    q = new_queue()
    q.add("a")
    await q.shut_down_with_drain()
    assert q.shutting_down
    assert await q.get() == "a"  # still queued keys are handed out


async def test_shut_down_with_drain_waits_for_in_flight_keys() -> None:
    q = new_queue()
    q.add("a")
    q.add("b")
    a = await q.get()
    b = await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    assert not drain.done()
    q.done(a)
    await settle()
    assert not drain.done()
    q.done(b)
    await settle()
    assert drain.done()
    drain.result()


async def test_shut_down_ends_a_pending_drain() -> None:
    q = new_queue()
    q.add("a")
    await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    assert not drain.done()
    q.shut_down()
    await settle()
    assert drain.done()


async def test_cancelled_drain_leaves_the_queue_shut_down() -> None:
    q = new_queue()
    q.add("a")
    await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    drain.cancel()
    await settle()
    assert drain.cancelled()
    assert q.shutting_down
    q.done("a")  # no drainer left to wake: must not fail


async def test_cancelled_get_takes_nothing() -> None:
    q = new_queue()
    getter = asyncio.create_task(q.get())
    await settle()
    getter.cancel()
    await settle()
    assert getter.cancelled()
    q.add("a")
    assert await q.get() == "a"


async def test_cancelled_woken_get_passes_the_key_on() -> None:
    q = new_queue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle()
    q.add("a")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    await settle()
    assert first.cancelled()
    assert second.result() == "a"


async def test_many_waiting_getters_each_get_one_key() -> None:
    q = new_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(4)]
    await settle()
    for key in "abcd":
        q.add(key)
    await settle()
    assert sorted(g.result() for g in getters) == list("abcd")


async def test_none_and_tuples_are_valid_keys() -> None:
    q: Queue[object] = Queue(clock=ManualClock())
    q.add(None)
    q.add(("ns", "name"))
    assert await q.get() is None
    assert await q.get() == ("ns", "name")
