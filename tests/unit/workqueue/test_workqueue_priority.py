"""ReadySet: highest priority first, FIFO within a priority, tombstones left by moves."""

from __future__ import annotations

from aimctl.workqueue._priority import EMPTY, ReadySet


def drain(ready: ReadySet[str]) -> list[str]:
    out: list[str] = []
    while (key := ready.pop()) is not EMPTY:
        out.append(key)
    return out


def test_pop_on_empty_set_returns_empty() -> None:
    assert ReadySet[str]().pop() is EMPTY


def test_fifo_within_one_priority() -> None:
    ready: ReadySet[str] = ReadySet()
    for key in "abc":
        ready.push(key, 0)
    assert drain(ready) == ["a", "b", "c"]


def test_higher_priority_first_then_fifo() -> None:
    ready: ReadySet[str] = ReadySet()
    ready.push("low1", -100)
    ready.push("mid1", 0)
    ready.push("high", 5)
    ready.push("low2", -100)
    ready.push("mid2", 0)
    assert drain(ready) == ["high", "mid1", "mid2", "low1", "low2"]


def test_move_joins_the_tail_of_the_new_priority() -> None:
    ready: ReadySet[str] = ReadySet()
    ready.push("a", -100)
    ready.push("b", 0)
    ready.push("c", -100)
    ready.move("a", -100, 0)
    assert drain(ready) == ["b", "a", "c"]


def test_tombstone_precedes_a_later_live_slot_of_the_same_key() -> None:
    # a is moved up (tombstone at -100), handed out, then pushed at -100 again: the
    # tombstone must be skipped and the new slot handed out in its own position.
    ready: ReadySet[str] = ReadySet()
    ready.push("a", -100)
    ready.push("b", -100)
    ready.move("a", -100, 0)
    assert ready.pop() == "a"
    ready.push("a", -100)
    ready.move("b", -100, 0)
    assert drain(ready) == ["b", "a"]


def test_twice_moved_key_leaves_two_tombstones() -> None:
    ready: ReadySet[str] = ReadySet()
    ready.push("a", -100)
    ready.move("a", -100, 0)
    assert ready.pop() == "a"
    ready.push("a", -100)
    ready.move("a", -100, 0)
    assert drain(ready) == ["a"]


def test_exhausted_buckets_are_dropped() -> None:
    ready: ReadySet[str] = ReadySet()
    ready.push("a", 1)
    ready.push("b", 0)
    assert ready.priorities() == [0, 1]
    assert drain(ready) == ["a", "b"]
    assert ready.priorities() == []


def test_push_to_a_new_top_priority_after_lower_ones() -> None:
    ready: ReadySet[str] = ReadySet()
    ready.push("a", 0)
    ready.push("b", 7)
    ready.push("c", 3)
    assert drain(ready) == ["b", "c", "a"]


def test_none_is_a_valid_key() -> None:
    ready: ReadySet[None] = ReadySet()
    ready.push(None, 0)
    assert ready.pop() is None
    assert ready.pop() is EMPTY
