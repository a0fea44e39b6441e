"""add_after: ready times on a manual clock, earliest-wins, ordering, and the one timer."""

from __future__ import annotations

import asyncio

import pytest

from aimctl._internal.clock import ManualClock
from aimctl.workqueue import MAX_WAIT, Queue, ShutDown


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def new_queue() -> tuple[Queue[str], ManualClock]:
    clock = ManualClock()
    return Queue(clock=clock), clock


async def test_add_after_is_not_due_before_its_ready_time() -> None:
    q, clock = new_queue()
    q.add_after("a", 5.0)
    assert len(q) == 0
    clock.advance(4.999)
    assert len(q) == 0
    clock.advance(0.001)
    assert len(q) == 1
    assert await q.get() == "a"


async def test_add_after_with_zero_or_negative_delay_is_a_plain_add() -> None:
    q, _ = new_queue()
    q.add_after("a", 0)
    q.add_after("b", -1.0)
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["a", "b"]


async def test_blocked_get_is_woken_when_the_clock_moves_and_the_queue_is_touched() -> None:
    q, clock = new_queue()
    getter = asyncio.create_task(q.get())
    await settle()
    q.add_after("a", 2.0)
    clock.advance(2.0)
    await settle()
    assert not getter.done()  # a manual clock does not drive the loop timer...
    assert len(q) == 1  # ...any operation reads the clock and releases due keys
    await settle()
    assert getter.result() == "a"


async def test_add_after_keeps_earliest_ready_time() -> None:
    q, clock = new_queue()
    q.add_after("a", 10.0)
    q.add_after("a", 3.0)
    q.add_after("a", 7.0)  # later than the recorded 3 s: ignored
    clock.advance(3.0)
    assert len(q) == 1
    assert await q.get() == "a"
    clock.advance(10.0)
    assert len(q) == 0  # the 10 s and 7 s slots were stale


async def test_a_stale_ready_time_does_not_release_a_key_early() -> None:
    q, clock = new_queue()
    q.add_after("other", 100.0)  # keeps the heap alive
    q.add_after("a", 1.0)
    q.add("a")  # the 1 s slot is now stale
    assert await q.get() == "a"
    q.done("a")
    q.add_after("a", 5.0)
    clock.advance(1.0)
    assert len(q) == 0
    clock.advance(4.0)
    assert len(q) == 1


async def test_add_two_fire_early() -> None:
    # client-go TestAddTwoFireEarly: the earlier of two delays wins, the other key waits.
    q, clock = new_queue()
    q.add_after("first", 1.0)
    q.add_after("second", 50.0)
    clock.advance(1.0)
    assert await q.get() == "first"
    q.add_after("second", 20.0)
    clock.advance(20.0)
    assert await q.get() == "second"
    clock.advance(30.0)
    assert len(q) == 0


async def test_plain_add_makes_a_delayed_key_due_now() -> None:
    q, clock = new_queue()
    q.add_after("a", 10.0)
    q.add("a")
    assert len(q) == 1
    assert await q.get() == "a"
    clock.advance(10.0)
    assert len(q) == 0  # no second hand-out from the old ready time


async def test_add_after_of_a_due_key_is_ignored() -> None:
    q, clock = new_queue()
    q.add("a")
    q.add_after("a", 5.0)
    assert await q.get() == "a"
    q.done("a")
    clock.advance(5.0)
    assert len(q) == 0


async def test_add_after_keeps_the_higher_priority() -> None:
    q, clock = new_queue()
    q.add_after("a", 1.0, priority=-100)
    q.add_after("a", 5.0, priority=3)  # later time ignored, higher priority kept
    q.add("b")
    clock.advance(1.0)
    assert [await q.get(), await q.get()] == ["a", "b"]


async def test_add_after_raises_the_priority_of_a_queued_key() -> None:
    q, _ = new_queue()
    q.add("a", priority=-100)
    q.add("b")
    q.add_after("a", 5.0, priority=1)
    assert [await q.get(), await q.get()] == ["a", "b"]


async def test_due_keys_leave_in_ready_time_order() -> None:
    q, clock = new_queue()
    q.add_after("c", 3.0)
    q.add_after("a", 1.0)
    q.add_after("b", 2.0)
    q.add_after("b2", 2.0)  # same ready time as b: scheduling order
    clock.advance(5.0)
    q.add("late")  # became available after all of them
    assert [await q.get() for _ in range(5)] == ["a", "b", "b2", "c", "late"]


async def test_priority_beats_ready_time() -> None:
    q, clock = new_queue()
    q.add_after("early-low", 1.0, priority=-100)
    q.add_after("late-high", 2.0, priority=0)
    clock.advance(2.0)
    assert [await q.get(), await q.get()] == ["late-high", "early-low"]


async def test_delayed_key_that_comes_due_while_processing_waits_for_done() -> None:
    q, clock = new_queue()
    q.add("a")
    assert await q.get() == "a"
    q.add_after("a", 1.0)
    q.add_after("b", 1.0)
    clock.advance(1.0)
    assert len(q) == 2  # a is due but parked
    assert await q.get() == "b"
    second = asyncio.create_task(q.get())
    await settle()
    assert not second.done()
    q.done("a")
    await settle()
    assert second.result() == "a"


async def test_delayed_re_add_that_came_due_during_processing_is_handed_out_once() -> None:
    q, clock = new_queue()
    q.add("a")
    await q.get()
    q.add_after("a", 1.0)
    clock.advance(1.0)  # nothing reads the clock before done
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0
    getter = asyncio.create_task(q.get())
    await settle()
    assert not getter.done()
    getter.cancel()


async def test_done_releases_earlier_ready_keys_before_the_parked_key() -> None:
    q, clock = new_queue()
    q.add("a")
    await q.get()
    q.add("a")  # parked
    q.add_after("b", 1.0)
    clock.advance(1.0)
    q.done("a")  # b was ready before a became available again
    assert [await q.get(), await q.get()] == ["b", "a"]


async def test_shut_down_drops_keys_not_yet_due() -> None:
    q, clock = new_queue()
    q.add_after("later", 5.0)
    q.add_after("due", 1.0)
    clock.advance(1.0)  # nothing read the clock yet: shut_down releases "due" first
    q.shut_down()
    assert await q.get() == "due"
    clock.advance(10.0)
    with pytest.raises(ShutDown):
        await q.get()
    assert len(q) == 0


async def test_shut_down_drops_a_delayed_re_add_of_an_in_flight_key() -> None:
    q, clock = new_queue()
    q.add("a")
    await q.get()
    q.add_after("a", 1.0)
    q.shut_down()
    q.done("a")
    clock.advance(2.0)
    with pytest.raises(ShutDown):
        await q.get()


async def test_one_timer_for_many_delayed_keys() -> None:
    q, _ = new_queue()
    for i in range(100):
        q.add_after(f"k{i}", 100.0 - i * 0.5)
    timers = [h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
    assert len(timers) == 1
    q.shut_down()


async def test_timer_is_rearmed_only_for_an_earlier_ready_time() -> None:
    q, _ = new_queue()
    q.add_after("a", 5.0)
    first = q._timer
    q.add_after("b", 8.0)
    assert q._timer is first
    q.add_after("c", 1.0)
    assert q._timer is not first
    assert first is not None
    assert first.cancelled()
    q.shut_down()
    assert q._timer is None


async def test_timer_is_clamped_to_max_wait() -> None:
    q, _ = new_queue()
    q.add_after("a", 1000.0)
    assert q._timer is not None
    assert q._timer_at == MAX_WAIT
    q.shut_down()


async def test_timer_callback_releases_due_keys_and_wakes_a_getter() -> None:
    q, clock = new_queue()
    getter = asyncio.create_task(q.get())
    await settle()
    q.add_after("a", 3.0)
    clock.advance(3.0)
    q._on_timer()  # what the loop does when the timer fires
    await settle()
    assert getter.result() == "a"
    assert q._timer is None  # nothing left to wait for


async def test_timer_fires_on_the_monotonic_clock() -> None:
    # The production configuration: the loop timer alone wakes a blocked get (1 ms delay).
    q: Queue[str] = Queue()
    q.add_after("a", 0.001)
    assert await asyncio.wait_for(q.get(), timeout=5.0) == "a"


async def test_add_after_outside_a_running_loop_arms_the_timer_on_first_get() -> None:
    clock = ManualClock()
    q: Queue[str] = Queue(clock=clock)

    def add_outside_loop() -> None:
        q.add_after("a", 1.0)

    await asyncio.get_running_loop().run_in_executor(None, add_outside_loop)
    armed = [q._timer is not None]
    getter = asyncio.create_task(q.get())
    await settle()
    armed.append(q._timer is not None)
    assert armed == [False, True]
    clock.advance(1.0)
    assert len(q) == 1
    await settle()
    assert getter.result() == "a"


async def test_stale_heap_slots_are_compacted() -> None:
    q, clock = new_queue()
    for round_ in range(50):
        for i in range(10):
            q.add_after(f"k{i}", 1000.0 - round_)  # each earlier time leaves a stale slot
    assert len(q._waiting) <= 2 * len(q._delayed) + 64 + 1
    clock.advance(1000.0)
    assert len(q) == 10


async def test_heap_is_emptied_when_no_key_is_delayed() -> None:
    q, _ = new_queue()
    q.add_after("a", 5.0)
    q.add("a")
    assert q._waiting == []
