"""Scrape-time metric primitives.

prometheus-client's Counter/Gauge/Histogram take a lock and walk label dicts on every update;
at workqueue rates (hundreds of thousands of items per second) that costs more than the queue
itself. These primitives keep plain Python numbers that the hot path bumps directly, and a
collector turns them into Prometheus metric families only when ``/metrics`` is scraped.

Contract:
- Names, types, labels and histogram buckets are exactly what the caller declares, so the
  exported text is indistinguishable from prometheus-client's own (controller-runtime names
  are declared by the packages that use them).
- Updates are not thread-safe; aimctl updates them from one asyncio event loop only.
- A family is registered on a registry the caller passes in, never the global default.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

__all__ = [
    "Collectable",
    "Counter",
    "CounterFamily",
    "FamilyCollector",
    "Gauge",
    "GaugeFamily",
    "Histogram",
    "HistogramFamily",
    "exponential_buckets",
]


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """``count`` bounds ``start, start*factor, ...``, as client_golang's ExponentialBuckets.

    Computed by repeated multiplication, as Go does, so the bounds are bit-for-bit Go's: for
    ``(10e-9, 10, 12)`` the fourth bound is ``9.999999999999999e-06``, not ``1e-05``, and
    that is the ``le`` label controller-runtime exports.
    """
    bounds: list[float] = []
    for _ in range(count):
        bounds.append(start)
        start *= factor
    return bounds


class Counter:
    """One labelled counter; ``value`` may be bumped directly on hot paths.

    Or, with :meth:`set_function`, read at scrape time from a count the owner keeps anyway
    (it must never decrease).
    """

    __slots__ = ("fn", "value")

    def __init__(self) -> None:
        self.value: float = 0
        self.fn: Callable[[], float] | None = None

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def set_function(self, fn: Callable[[], float]) -> None:
        """Read the value from ``fn`` at scrape time instead of storing it."""
        self.fn = fn

    def get(self) -> float:
        return self.fn() if self.fn is not None else self.value


class Gauge:
    """One labelled gauge: a stored value, or a callback read at scrape time."""

    __slots__ = ("fn", "value")

    def __init__(self) -> None:
        self.value: float = 0
        self.fn: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set_function(self, fn: Callable[[], float]) -> None:
        """Read the value from ``fn`` at scrape time instead of storing it."""
        self.fn = fn

    def get(self) -> float:
        return self.fn() if self.fn is not None else self.value


class Histogram:
    """One labelled histogram: per-bucket (non-cumulative) counts, a sum and a count.

    Two ways in: :meth:`observe` files a value at once; hot paths may instead append raw
    values to ``pending`` (a list that is never replaced, so a reference to it or to its
    ``append`` may be kept) and must call :meth:`fold` once it holds :attr:`FOLD_AT` values
    or more. Pending values are folded in before anything is read (``counts``, ``sum``,
    ``count``, a scrape), so the exported histogram is the same either way, up to the
    rounding of the sum. Folding sorts the batch and bisects it once per bound, which costs
    less per value than bisecting every value on the hot path. A scrape folds too, so it must
    run on the thread that appends (aimctl serves ``/metrics`` on the event loop).
    """

    __slots__ = ("_bounds", "_counts", "_sum", "pending")

    FOLD_AT = 1024

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        # _counts[i] counts observations in (bounds[i-1], bounds[i]]; the last slot is +Inf.
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        # Raw observations not yet in _counts/_sum (see the class docstring).
        self.pending: list[float] = []

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def fold(self) -> None:
        """File the ``pending`` values into the buckets and the sum, and empty it."""
        pending = self.pending
        if not pending:
            return
        pending.sort()
        counts = self._counts
        below = 0
        for i, bound in enumerate(self._bounds):
            upto = bisect_right(pending, bound)  # values <= bound, as observe files them
            counts[i] += upto - below
            below = upto
        counts[-1] += len(pending) - below
        self._sum += sum(pending)
        pending.clear()

    @property
    def counts(self) -> list[int]:
        self.fold()
        return self._counts

    @property
    def sum(self) -> float:
        self.fold()
        return self._sum

    @sum.setter
    def sum(self, value: float) -> None:
        self.fold()
        self._sum = value

    @property
    def count(self) -> int:
        return sum(self.counts)


ChildT = TypeVar("ChildT")


class _Family(Generic[ChildT]):
    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], ChildT] = {}

    def _new_child(self) -> ChildT:
        raise NotImplementedError

    def labels(self, *values: str) -> ChildT:
        """The child for these label values (created on first use). Keep it for hot paths."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._new_child()
        return child

    def remove(self, *values: str) -> None:
        self._children.pop(values, None)

    def children(self) -> Iterator[tuple[tuple[str, ...], ChildT]]:
        return iter(list(self._children.items()))

    def collect(self) -> Metric:
        raise NotImplementedError


class CounterFamily(_Family[Counter]):
    """A counter with labels. ``name`` excludes the ``_total`` suffix, as in prometheus-client."""

    def _new_child(self) -> Counter:
        return Counter()

    def collect(self) -> Metric:
        m = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children():
            m.add_metric(list(values), child.get())
        return m


class GaugeFamily(_Family[Gauge]):
    def _new_child(self) -> Gauge:
        return Gauge()

    def collect(self) -> Metric:
        m = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children():
            m.add_metric(list(values), child.get())
        return m


class HistogramFamily(_Family[Histogram]):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        self.buckets: tuple[float, ...] = tuple(bounds)

    def _new_child(self) -> Histogram:
        return Histogram(self.buckets)

    def collect(self) -> Metric:
        m = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children():
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, n in zip((*self.buckets, math.inf), child.counts, strict=True):
                cumulative += n
                buckets.append((_format_bound(bound), cumulative))
            m.add_metric(list(values), buckets, child.sum)
        return m


def _format_bound(bound: float) -> str:
    # prometheus-client's own formatting of "le", so output is byte-identical.
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


class Collectable(Protocol):
    def collect(self) -> Metric: ...


class FamilyCollector(Collector):
    """Exports a set of families at scrape time. Register once per registry."""

    def __init__(self, families: Iterable[Collectable] = ()) -> None:
        self._families: list[Collectable] = list(families)

    def add(self, family: Collectable) -> None:
        self._families.append(family)

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.collect()

    def describe(self) -> Iterator[Metric]:
        # Describing lets the registry reject duplicate names at registration time.
        for family in self._families:
            yield family.collect()

    def register(self, registry: CollectorRegistry) -> FamilyCollector:
        registry.register(self)
        return self
