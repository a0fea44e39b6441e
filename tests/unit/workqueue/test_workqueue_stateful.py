"""A hypothesis state machine drives the queue with concurrent workers against a reference
model: random add / add_after / add_rate_limited / forget / get / done / cancel / shut_down and
clock moves, on a manual clock.

The model is deliberately naive (dicts, a sort per hand-out) and states the contract directly:
- a key is never held by two workers; every dirty key is eventually handed out, once;
- ready-time order: delayed keys become available in (ready time, scheduling order), before
  anything else that happens at or after that time;
- priority order: the highest priority first, then the order of becoming available (a raised
  priority joins the tail of the new priority; a key re-added while processing becomes
  available at ``done``);
- waiting ``get`` calls receive the best available keys (which of them gets which is not
  part of the contract);
- ``len(q)`` and the ``workqueue_depth`` series equal the model's due keys, and the counters
  and histogram counts equal the model's hand-outs plus due keys, retries, hand-outs and
  dones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import CollectorRegistry

from aimctl._internal.clock import ManualClock
from aimctl.workqueue import LOW_PRIORITY, ItemExponentialRateLimiter, Queue, ShutDown

KEYS = st.sampled_from(["a", "b", "c"])
PRIORITIES = st.sampled_from([LOW_PRIORITY, 0, 0, 3])
DELAYS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0])
WORKERS = 3
BASE, CAP = 0.5, 4.0  # the rate limiter under test: 0.5, 1, 2, 4, 4, ... seconds
NAME = "model"


@dataclass
class Model:
    """The reference queue."""

    now: float = 0.0
    shut: bool = False
    priority: dict[str, int] = field(default_factory=dict)  # every dirty key
    delayed: dict[str, tuple[float, int]] = field(default_factory=dict)  # (ready_at, sched)
    available: dict[str, int] = field(default_factory=dict)  # queued key -> availability seq
    processing: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    sched: int = 0
    retries: int = 0
    handed_out: int = 0
    dones: int = 0

    def _make_available(self, key: str) -> None:
        self.available[key] = self.seq
        self.seq += 1

    def release(self) -> None:
        for _, key in sorted((v, k) for k, v in self.delayed.items() if v[0] <= self.now):
            del self.delayed[key]
            if key not in self.processing:
                self._make_available(key)

    def _raise(self, key: str, priority: int) -> None:
        if priority > self.priority[key]:
            self.priority[key] = priority
            if key in self.available:
                self._make_available(key)  # to the tail of the new priority

    def add(self, key: str, priority: int) -> None:
        if self.shut:
            return
        self.release()
        if key in self.priority:
            self._raise(key, priority)
            if key in self.delayed:
                del self.delayed[key]
                if key not in self.processing:
                    self._make_available(key)
            return
        self.priority[key] = priority
        if key not in self.processing:
            self._make_available(key)

    def add_after(self, key: str, delay: float, priority: int) -> None:
        if self.shut:
            return
        if delay <= 0:
            self.add(key, priority)
            return
        self.retries += 1
        self.release()
        ready_at = self.now + delay
        if key in self.priority:
            self._raise(key, priority)
            if key in self.delayed and ready_at < self.delayed[key][0]:
                self.delayed[key] = (ready_at, self.sched)
                self.sched += 1
            return
        self.priority[key] = priority
        self.delayed[key] = (ready_at, self.sched)
        self.sched += 1

    def add_rate_limited(self, key: str, priority: int) -> None:
        if self.shut:
            return
        n = self.failures.get(key, 0)
        self.failures[key] = n + 1
        self.add_after(key, min(BASE * 2**n, CAP), priority)

    def forget(self, key: str) -> None:
        self.failures.pop(key, None)

    def take(self, release: bool = True) -> str | None:
        """What a ``get`` hands out now, if anything (a woken ``get`` does not release: the
        operation that woke it already did, at the same clock time)."""
        if release:
            self.release()
        if not self.available:
            return None
        key = max(self.available, key=lambda k: (self.priority[k], -self.available[k]))
        del self.available[key]
        del self.priority[key]
        self.processing.add(key)
        self.handed_out += 1
        return key

    def done(self, key: str) -> None:
        self.dones += 1
        self.release()  # with key still processing: if due, it is parked
        self.processing.discard(key)
        if key in self.priority and key not in self.delayed:
            self._make_available(key)

    def shut_down(self) -> None:
        self.release()
        self.shut = True
        for key in self.delayed:
            del self.priority[key]
        self.delayed.clear()

    def due(self) -> int:
        self.release()
        return len(self.priority) - len(self.delayed)

    def depth(self) -> dict[int, int]:
        """Due keys per priority as a scrape sees them: without releasing anything."""
        depth: dict[int, int] = {}
        for key, priority in self.priority.items():
            if key not in self.delayed or self.delayed[key][0] <= self.now:
                depth[priority] = depth.get(priority, 0) + 1
        return depth


class _NoTimerQueue(Queue[str]):
    """The queue under test, minus its loop timer: on a manual clock the timer would fire
    after *real* seconds, nondeterministically. Keys are released by operations that read
    the clock instead (covered, with the timer, in test_workqueue_delaying)."""

    def _arm_timer(self) -> None:
        pass


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.registry = CollectorRegistry()
        self.q: Queue[str] = _NoTimerQueue(
            name=NAME,
            registry=self.registry,
            clock=self.clock,
            rate_limiter=ItemExponentialRateLimiter(BASE, CAP),
        )
        self.model = Model()
        # Worker slots: a pending get() task, or the key it holds, or neither (idle).
        self.getting: dict[int, asyncio.Task[str]] = {}
        self.holding: dict[int, str] = {}
        # The model's view of the same slots. Which waiting worker gets which key is not part
        # of the contract (a get that finds a key takes it at once; woken gets take the best
        # key when they run), so the model checks *which keys* waiting workers receive.
        self.model_waiting: set[int] = set()
        self.model_holding: dict[int, str] = {}
        self.expect_shut_down: set[int] = set()

    # -- driving -------------------------------------------------------------------------

    def settle(self) -> None:
        """Run the loop until woken gets have taken their keys, then check them against the
        model: waiting workers receive exactly the model's best available keys."""

        async def spin() -> None:
            for _ in range(6):
                await asyncio.sleep(0)

        self.loop.run_until_complete(spin())
        got: dict[int, str] = {}
        shut: set[int] = set()
        for worker, task in list(self.getting.items()):
            if task.done():
                del self.getting[worker]
                if isinstance(task.exception(), ShutDown):
                    shut.add(worker)
                else:
                    self.holding[worker] = got[worker] = task.result()
        served = {w: k for w, k in got.items() if w not in self.model_holding}
        assert set(served) <= self.model_waiting
        n = min(len(self.model_waiting), len(self.model.available))
        best = [self.model.take(release=False) for _ in range(n)]
        assert sorted(served.values()) == sorted(k for k in best if k is not None)
        self.model_waiting -= set(served)
        self.model_holding.update(served)
        if self.model.shut and not self.model.available:
            self.expect_shut_down |= self.model_waiting  # each waiting get raises ShutDown
            self.model_waiting.clear()
        assert shut == self.expect_shut_down
        self.expect_shut_down.clear()

    def idle(self) -> list[int]:
        return [w for w in range(WORKERS) if w not in self.getting and w not in self.holding]

    # -- rules ---------------------------------------------------------------------------

    @rule(key=KEYS, priority=PRIORITIES)
    def add(self, key: str, priority: int) -> None:
        self.q.add(key, priority=priority)
        self.model.add(key, priority)
        self.settle()

    @rule(key=KEYS, delay=DELAYS, priority=PRIORITIES)
    def add_after(self, key: str, delay: float, priority: int) -> None:
        self.q.add_after(key, delay, priority=priority)
        self.model.add_after(key, delay, priority)
        self.settle()

    @rule(key=KEYS, priority=PRIORITIES)
    def add_rate_limited(self, key: str, priority: int) -> None:
        self.q.add_rate_limited(key, priority=priority)
        self.model.add_rate_limited(key, priority)
        self.settle()

    @rule(key=KEYS)
    def forget(self, key: str) -> None:
        self.q.forget(key)
        self.model.forget(key)
        assert self.q.num_requeues(key) == 0

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 3.0]))
    def advance(self, seconds: float) -> None:
        # Nothing reads the clock until the next operation: keys due by now are released
        # then, before that operation orders anything.
        self.clock.advance(seconds)
        self.model.now += seconds

    @rule()
    def check_len(self) -> None:
        # len() reads the clock, releases due keys and wakes waiting gets for them; it equals
        # the sum of the depth series.
        assert len(self.q) == self.model.due() == sum(self.model.depth().values())
        self.settle()

    @precondition(lambda self: bool(self.idle()))
    @rule(pick=st.integers(0, WORKERS - 1))
    def get(self, pick: int) -> None:
        idle = self.idle()
        worker = idle[pick % len(idle)]
        self.getting[worker] = self.loop.create_task(self.q.get())
        key = self.model.take()
        if key is not None:
            self.model_holding[worker] = key  # a get that finds a key takes it at once
        elif self.model.shut:
            self.expect_shut_down.add(worker)
        else:
            self.model_waiting.add(worker)
        self.settle()

    @precondition(lambda self: bool(self.holding))
    @rule(pick=st.integers(0, WORKERS - 1))
    def done(self, pick: int) -> None:
        workers = sorted(self.holding)
        worker = workers[pick % len(workers)]
        key = self.holding.pop(worker)
        self.q.done(key)
        self.model.done(self.model_holding.pop(worker))
        self.settle()

    @precondition(lambda self: bool(self.getting))
    @rule(pick=st.integers(0, WORKERS - 1))
    def cancel_get(self, pick: int) -> None:
        workers = sorted(self.getting)
        worker = workers[pick % len(workers)]
        self.getting.pop(worker).cancel()
        self.model_waiting.remove(worker)
        self.settle()

    @precondition(lambda self: bool(self.getting))
    @rule(key=KEYS, priority=PRIORITIES, pick=st.integers(0, WORKERS - 1))
    def add_and_cancel_a_get(self, key: str, priority: int, pick: int) -> None:
        # The add wakes a waiting get; a get is cancelled before any of them runs. If it was
        # the woken one, the key must go to another waiting get (or stay queued), not be lost.
        self.q.add(key, priority=priority)
        workers = sorted(self.getting)
        worker = workers[pick % len(workers)]
        self.getting.pop(worker).cancel()
        self.model.add(key, priority)
        self.model_waiting.remove(worker)
        self.settle()

    @precondition(lambda self: not self.model.shut)
    @rule()
    def shut_down(self) -> None:
        self.q.shut_down()
        self.model.shut_down()
        self.settle()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def workers_hold_what_the_model_says(self) -> None:
        assert self.holding == self.model_holding
        assert set(self.getting) == self.model_waiting

    @invariant()
    def no_key_is_held_twice(self) -> None:
        held = list(self.holding.values())
        assert len(held) == len(set(held))

    @invariant()
    def nothing_is_queued_while_a_get_waits(self) -> None:
        if self.getting:
            assert not self.model.available

    @invariant()
    def depth_matches_the_model(self) -> None:
        depth = {
            int(s.labels["priority"]): s.value
            for f in self.registry.collect()
            if f.name == "workqueue_depth"
            for s in f.samples
        }
        # Read-only on both sides (len() would release keys): see check_len for len().
        assert {p: n for p, n in depth.items() if n} == self.model.depth()

    @invariant()
    def counters_match_the_model(self) -> None:
        labels = {"name": NAME, "controller": NAME}
        value = self.registry.get_sample_value
        # adds_total counts a delayed key from its ready time, as the depth does.
        due_now = sum(self.model.depth().values())
        assert value("workqueue_adds_total", labels) == self.model.handed_out + due_now
        assert value("workqueue_retries_total", labels) == self.model.retries
        assert value("workqueue_queue_duration_seconds_count", labels) == self.model.handed_out
        assert value("workqueue_work_duration_seconds_count", labels) == self.model.dones

    def teardown(self) -> None:
        try:
            # No re-add is lost: finish everything in flight, let every delay pass, and the
            # queue hands out exactly the keys the model still owes, each once.
            for worker in sorted(self.getting):
                self.getting.pop(worker).cancel()
            self.model_waiting.clear()
            self.settle()
            for worker, key in sorted(self.holding.items()):
                self.q.done(key)
                self.model.done(self.model_holding.pop(worker))
            self.holding.clear()
            self.clock.advance(1000.0)
            self.model.now += 1000.0
            owed: list[str] = []
            while (next_key := self.model.take()) is not None:
                owed.append(next_key)
                self.model.done(next_key)
            drained = []
            for _ in range(len(owed) + 1):  # bounded: a broken queue must fail, not hang
                if not len(self.q):
                    break
                get = asyncio.wait_for(self.q.get(), timeout=10.0)
                key = self.loop.run_until_complete(get)
                drained.append(key)
                self.q.done(key)
            assert drained == owed
            assert len(self.q) == 0
        finally:
            self.q.shut_down()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()


QueueMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueAgainstModel = QueueMachine.TestCase
