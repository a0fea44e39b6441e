"""The ready set: due keys in hand-out order, highest priority first, FIFO within a priority.

Owns the order of keys that may be handed out now, nothing else: dedup, delays and the
processing set belong to the queue that feeds it (``_queue.py``, ``_delaying.py``).

Order (the contract ``Queue.get`` documents):
- a higher priority is always handed out before a lower one;
- within one priority, keys leave in the order they were pushed, i.e. the order in which they
  became available: a key added now, a delayed key whose ready time passed (pushed in
  ready-time order), a key re-added while processing (pushed when ``done`` frees it), or a key
  whose priority was raised (it joins the tail of its new priority).

Why buckets and not a heap: nearly every key has priority 0 (controller-runtime uses 0 and
``LOW_PRIORITY``), so one ``deque`` of keys per priority makes push and pop O(1) with no
comparisons and no per-key object; there are only a handful of priorities. Raising a queued
key's priority pushes it again and leaves a tombstone in the old bucket instead of an O(n)
removal: tombstones are counted per (key, priority) and skipped on pop. That is exact because
buckets are FIFO: a key's tombstones in a bucket always precede its live slot there, if any.
"""

from __future__ import annotations

import enum
from bisect import insort
from collections import deque
from collections.abc import Hashable
from typing import Generic, Literal, TypeVar

__all__ = ["EMPTY", "ReadySet"]

K = TypeVar("K", bound=Hashable)


class _Empty(enum.Enum):
    EMPTY = enum.auto()


# Returned by ReadySet.pop when nothing is queued (None is a valid key).
EMPTY = _Empty.EMPTY


class ReadySet(Generic[K]):
    """Due keys by priority (highest first), FIFO within a priority.

    Guarantees: ``pop`` returns each pushed key once, in the documented order, skipping the
    slots left behind by :meth:`move`.
    Caller obligations: push a key only if it is not in the set; change a queued key's
    priority only through :meth:`move`.
    """

    __slots__ = ("_buckets", "_priorities", "_tombstones", "_top", "_top_priority")

    def __init__(self) -> None:
        # priority -> FIFO of slots (keys); a slot is a tombstone iff counted in _tombstones.
        self._buckets: dict[int, deque[K]] = {}
        # Keys of _buckets, ascending; the last one is the highest priority.
        self._priorities: list[int] = []
        # (key, priority) -> number of dead slots of key in that bucket (never 0: deleted).
        self._tombstones: dict[tuple[K, int], int] = {}
        # The bucket of the highest priority and that priority; None when there are no buckets.
        self._top: deque[K] | None = None
        self._top_priority = 0

    def push(self, key: K, priority: int) -> None:
        """Append ``key`` at the tail of ``priority``."""
        bucket = self._buckets.get(priority)
        if bucket is None:
            bucket = self._add_bucket(priority)
        bucket.append(key)

    def pop(self) -> K | Literal[_Empty.EMPTY]:
        """Remove and return the first key in hand-out order, or :data:`EMPTY`."""
        bucket = self._top
        while bucket is not None:
            while bucket:
                key = bucket.popleft()
                if not self._tombstones or not self._bury(key):
                    return key
            bucket = self._drop_top()
        return EMPTY

    def move(self, key: K, old: int, new: int) -> None:
        """Move a queued ``key`` from priority ``old`` to the tail of ``new``."""
        slot = (key, old)
        self._tombstones[slot] = self._tombstones.get(slot, 0) + 1
        self.push(key, new)

    def priorities(self) -> list[int]:
        """Priorities that currently have a bucket, ascending (for inspection and tests)."""
        return list(self._priorities)

    def _bury(self, key: K) -> bool:
        # True if this slot of ``key`` in the top bucket is a tombstone (and uncount it).
        slot = (key, self._top_priority)
        n = self._tombstones.get(slot)
        if n is None:
            return False
        if n == 1:
            del self._tombstones[slot]
        else:
            self._tombstones[slot] = n - 1
        return True

    def _add_bucket(self, priority: int) -> deque[K]:
        bucket: deque[K] = deque()
        self._buckets[priority] = bucket
        insort(self._priorities, priority)
        if self._priorities[-1] == priority:
            self._top = bucket
            self._top_priority = priority
        return bucket

    def _drop_top(self) -> deque[K] | None:
        # The top bucket is exhausted (its tombstones were popped too): remove it.
        del self._buckets[self._priorities.pop()]
        if self._priorities:
            self._top_priority = self._priorities[-1]
            self._top = self._buckets[self._top_priority]
        else:
            self._top = None
        return self._top
