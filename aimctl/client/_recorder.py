"""Event recorder: ``events.k8s.io/v1`` Events about the objects a controller manages.

Guarantees:
- A repeated event (same object, type, reason, action and note) within ``series_window`` seconds
  becomes a *series* on one Event object (``series.count``, ``series.lastObservedTime``), not a
  new object per occurrence, as client-go's events library does.
- Recording never blocks or fails the caller: :meth:`EventRecorder.event` queues the event and
  one background task writes the queue in order; errors are logged.
- Bounded, whatever the server does (client-go's broadcaster, k8s.io/client-go/tools/record/
  event.go: ``maxQueuedEvents = 1000``, dropped beyond with a log; its correlator keeps an LRU
  of ``maxLruCacheEntries = 4096``): at most ``queue_size`` events wait (more are dropped and
  counted in ``dropped``), one writer task, at most ``cache_size`` series remembered.
  Call :meth:`aclose` on shutdown to flush what is queued (within a deadline).

``kubectl describe`` shows these Events under the object (it lists events.k8s.io Events through
the core API, with ``note`` as the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from aimctl.client._errors import ApiError, NotFound
from aimctl.client._rest import RestClient

__all__ = ["EventRecorder", "EventType"]

log = structlog.get_logger("aimctl.events")

EventType = Literal["Normal", "Warning"]
_NOTE_MAX = 1024


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    last_write: float


@dataclass(frozen=True, slots=True)
class _Pending:
    regarding: Mapping[str, Any]
    type_: EventType
    reason: str
    note: str
    action: str


class EventRecorder:
    """Records Events as ``reporting_controller`` (e.g. ``aimkvcache-controller``).

    Args:
        rest: the client that writes the Events.
        reporting_controller: ``reportingController`` of every Event.
        reporting_instance: ``reportingInstance``. Default: ``reporting_controller``.
        series_window: seconds within which a repeat joins the previous Event's series.
            Default: 360 (client-go's 6 minutes).
        queue_size: events waiting to be written before new ones are dropped. Default: 1000.
        cache_size: series remembered (least recently used forgotten). Default: 4096.

    Attributes:
        dropped: events dropped because the queue was full (or the recorder closed).
    """

    def __init__(
        self,
        rest: RestClient,
        reporting_controller: str,
        *,
        reporting_instance: str = "",
        series_window: float = 360.0,
        queue_size: int = 1000,
        cache_size: int = 4096,
    ) -> None:
        self._rest = rest
        self.reporting_controller = reporting_controller
        self.reporting_instance = reporting_instance or reporting_controller
        self._window = series_window
        self._cache_size = cache_size
        self._series: OrderedDict[tuple[str, ...], _Series] = OrderedDict()  # LRU order
        # One writer drains the queue in order, so a repeat always finds the series its
        # predecessor created (no per-key locks, no task per event).
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0

    def event(
        self,
        regarding: Mapping[str, Any],
        type_: EventType,
        reason: str,
        note: str,
        *,
        action: str = "Reconcile",
    ) -> None:
        """Record an event about ``regarding`` (an object dict with apiVersion/kind/metadata).

        Must be called on the event loop (it starts the writer task on first use)."""
        if self._closed:
            self._drop(reason, "the recorder is closed")
            return
        try:
            self._queue.put_nowait(_Pending(regarding, type_, reason, note[:_NOTE_MAX], action))
        except asyncio.QueueFull:
            self._drop(reason, "too many queued events")
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._run(), name=f"event-recorder-{self.reporting_controller}"
            )

    def _drop(self, reason: str, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 100 == 0:  # a log line per burst, not per event
            log.warning("Dropped event", reason=reason, why=why, dropped=self.dropped)

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop accepting events, write what is queued for at most ``timeout`` seconds, then
        drop the rest and stop the writer. Closing twice is fine."""
        self._closed = True
        worker = self._worker
        if worker is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        while not self._queue.empty():
            self._queue.get_nowait()
            self._drop("", "not written before close")

    async def _run(self) -> None:
        while True:
            p = await self._queue.get()
            try:
                await self._record(p.regarding, p.type_, p.reason, p.note, p.action)
            finally:
                self._queue.task_done()

    async def _record(
        self, regarding: Mapping[str, Any], type_: EventType, reason: str, note: str, action: str
    ) -> None:
        m = regarding.get("metadata") or {}
        ns = m.get("namespace") or "default"
        key = (str(m.get("uid", "")), ns, str(m.get("name", "")), type_, reason, action, note)
        await self._write(key, regarding, m, ns, type_, reason, note, action)

    async def _write(
        self,
        key: tuple[str, ...],
        regarding: Mapping[str, Any],
        m: Mapping[str, Any],
        ns: str,
        type_: EventType,
        reason: str,
        note: str,
        action: str,
    ) -> None:
        now = time.monotonic()
        try:
            series = self._series.get(key)
            if series is not None:
                self._series.move_to_end(key)
            if series is not None and now - series.last_write < self._window:
                series.count += 1
                series.last_write = now
                try:
                    await self._rest.request(
                        "PATCH",
                        f"/apis/events.k8s.io/v1/namespaces/{series.namespace}/events/{series.name}",
                        body={"series": {"count": series.count, "lastObservedTime": _micro_time()}},
                        content_type="application/merge-patch+json",
                    )
                    return
                except NotFound:
                    pass  # the event expired (TTL); start a new one
            name = f"{m.get('name', 'object')}.{secrets.token_hex(8)}"
            body = {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "eventTime": _micro_time(),
                "reportingController": self.reporting_controller,
                "reportingInstance": self.reporting_instance,
                "action": action,
                "reason": reason,
                "type": type_,
                "note": note,
                "regarding": {
                    "apiVersion": regarding.get("apiVersion"),
                    "kind": regarding.get("kind"),
                    "name": m.get("name"),
                    "namespace": m.get("namespace"),
                    "uid": m.get("uid"),
                    "resourceVersion": m.get("resourceVersion"),
                },
            }
            await self._rest.request(
                "POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events", body=body
            )
            self._series[key] = _Series(name, ns, 1, now)
            self._series.move_to_end(key)
            while len(self._series) > self._cache_size:
                self._series.popitem(last=False)
        except ApiError as err:
            log.warning("Failed to record event", reason=reason, error=str(err))
        except Exception as err:  # never let event recording break anything
            log.warning("Failed to record event", reason=reason, error=repr(err))
