"""The reconcile contract: what a reconciler receives, returns and raises.

Reconciliation is level-based. A :class:`Request` names an object and nothing else: not the
event, not the object's content, not what changed. The reconciler reads the current state of the
world (from the cache), computes what it should be and converges. After a delete it sees the
object missing, not a "delete event"; after many updates it runs once and sees the latest state.

Outcomes of ``reconcile`` and what the controller does with them:

- returns ``Result()`` (or ``None``): done; the key's failure count is reset.
- returns ``Result(requeue_after=d)`` with ``d > 0``: reconcile again after ``d`` seconds; the
  failure count is reset (use this for polling something the cache cannot watch).
  ``requeue_after=0`` means "not set", as in controller-runtime: it is *not* "again at once",
  which would be an unthrottled loop.
- returns ``Result(requeue=True)``: reconcile again through the rate limiter (per-key backoff
  grows, as after an error, but nothing is logged or counted as an error). Prefer
  ``requeue_after``; controller-runtime deprecates ``Requeue`` for the same reason.
- raises :class:`TerminalError`: logged and counted, never retried; only a new event for the key
  runs it again (use it for input that cannot succeed until the user changes it).
- raises anything else: logged with its traceback, counted, and retried with per-key exponential
  backoff (5 ms doubling to 1000 s by default). A worker never dies of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

__all__ = ["Reconciler", "ReconcileFunc", "Request", "Result", "TerminalError"]


@dataclass(frozen=True, slots=True, order=True)
class Request:
    """The object to reconcile: namespace ("" for cluster-scoped kinds) and name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    """What to do after a successful reconcile.

    ``requeue_after``: seconds after which to reconcile again even without an event; ``None``
    or ``0`` means wait for the next event (only a positive delay requeues). It takes
    precedence over ``requeue``.

    ``requeue``: reconcile again after the key's rate-limited backoff (which keeps growing
    while a reconciler keeps asking): controller-runtime's ``Result.Requeue``.
    """

    requeue_after: float | None = None
    requeue: bool = False

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < 0:
            raise ValueError("requeue_after must be >= 0")


class TerminalError(Exception):
    """A failure that retrying cannot fix; the key is not requeued.

    Wrap the cause: ``raise TerminalError("spec.x is invalid") from err``.
    """


class Reconciler(Protocol):
    """Anything with ``async def reconcile(request) -> Result | None``."""

    async def reconcile(self, request: Request) -> Result | None: ...


ReconcileFunc: TypeAlias = Callable[[Request], Awaitable[Result | None]]
