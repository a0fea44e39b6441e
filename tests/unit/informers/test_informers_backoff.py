"""aimctl._internal.backoff: client-go's reflector backoff numbers, on a manual clock."""

from __future__ import annotations

import random

import pytest

from aimctl._internal.backoff import Backoff, BackoffPolicy
from aimctl._internal.clock import ManualClock


def test_delays_double_from_initial_up_to_cap_without_jitter() -> None:
    b = Backoff(BackoffPolicy(jitter=0.0), clock=ManualClock())
    delays = [b.next_delay() for _ in range(9)]
    assert delays == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0])
    assert b.failures == 6  # stops counting once the cap is reached


def test_jitter_adds_up_to_the_jitter_fraction_on_top_of_the_nominal_delay() -> None:
    clock = ManualClock()
    b = Backoff(BackoffPolicy(), clock=clock, rng=random.Random(7))
    nominal = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    for n in nominal:
        d = b.next_delay()
        assert n <= d < 2 * n


def test_a_failure_after_a_healthy_period_starts_again_from_initial() -> None:
    clock = ManualClock()
    b = Backoff(BackoffPolicy(jitter=0.0), clock=clock)
    for _ in range(5):
        b.next_delay()
    clock.advance(119)
    assert b.next_delay() == pytest.approx(25.6)  # still within 2 min of the last failure
    clock.advance(121)
    assert b.next_delay() == pytest.approx(0.8)


def test_reset_forgets_failures() -> None:
    b = Backoff(BackoffPolicy(jitter=0.0), clock=ManualClock())
    b.next_delay()
    b.next_delay()
    b.reset()
    assert b.next_delay() == pytest.approx(0.8)


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"initial": 5, "cap": 1}, {"factor": 0.5}, {"jitter": -1}],
)
def test_policy_rejects_impossible_numbers(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)
