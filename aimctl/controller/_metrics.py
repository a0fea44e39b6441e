"""controller-runtime's controller metrics, with its exact names, labels and buckets.

Two more are ours (controller-runtime crashes the process where we count and recover):
``aimctl_controller_handler_errors_total{controller}`` (an event handler's predicate or mapper
raised; the event is retried, see ``_handlers``) and
``aimctl_controller_worker_restarts_total{controller}`` (a worker task died and was restarted).
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry

from aimctl.metrics import CounterFamily, FamilyCollector, GaugeFamily, HistogramFamily

__all__ = ["RECONCILE_TIME_BUCKETS", "ControllerMetrics", "controller_metrics"]

# fmt: off
RECONCILE_TIME_BUCKETS = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30,
    40, 50, 60,
]
# fmt: on


class ControllerMetrics:
    """The families; one set per registry, shared by every controller registered on it."""

    def __init__(self) -> None:
        c = "controller"
        self.total = CounterFamily(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            [c, "result"],
        )
        self.errors = CounterFamily(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            [c],
        )
        self.terminal_errors = CounterFamily(
            "controller_runtime_terminal_reconcile_errors",
            "Total number of terminal reconciliation errors per controller",
            [c],
        )
        self.panics = CounterFamily(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            [c],
        )
        self.timeouts = CounterFamily(
            "controller_runtime_reconcile_timeouts",
            "Total number of reconciliation timeouts per controller",
            [c],
        )
        self.time = HistogramFamily(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            [c],
            buckets=RECONCILE_TIME_BUCKETS,
        )
        self.max_concurrent = GaugeFamily(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            [c],
        )
        self.active_workers = GaugeFamily(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            [c],
        )
        self.handler_errors = CounterFamily(
            "aimctl_controller_handler_errors",
            "Exceptions raised by a controller's event predicates and mappers",
            [c],
        )
        self.worker_restarts = CounterFamily(
            "aimctl_controller_worker_restarts",
            "Worker tasks that died and were restarted, per controller",
            [c],
        )

    def families(self) -> list[CounterFamily | GaugeFamily | HistogramFamily]:
        return [
            self.total,
            self.errors,
            self.terminal_errors,
            self.panics,
            self.timeouts,
            self.time,
            self.max_concurrent,
            self.active_workers,
            self.handler_errors,
            self.worker_restarts,
        ]


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, ControllerMetrics] = (
    weakref.WeakKeyDictionary()
)


def controller_metrics(registry: CollectorRegistry) -> ControllerMetrics:
    """The controller families registered on ``registry`` (registered on first use)."""
    m = _by_registry.get(registry)
    if m is None:
        m = _by_registry[registry] = ControllerMetrics()
        FamilyCollector(m.families()).register(registry)
    return m
