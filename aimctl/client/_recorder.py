"""Event recorder: ``events.k8s.io/v1`` Events about the objects a controller manages.

Guarantees:
- A repeated event (same object, type, reason, action and note) within ``series_window`` seconds
  becomes a *series* on one Event object (``series.count``, ``series.lastObservedTime``), not a
  new object per occurrence, as client-go's events library does.
- Recording never blocks or fails the caller: the write happens in a background task and errors
  are logged. Call :meth:`aclose` on shutdown to flush pending writes.

``kubectl describe`` shows these Events under the object (it lists events.k8s.io Events through
the core API, with ``note`` as the message).
"""

from __future__ import annotations

import asyncio
import secrets
import time
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


class EventRecorder:
    """Records Events as ``reporting_controller`` (e.g. ``aimkvcache-controller``)."""

    def __init__(
        self,
        rest: RestClient,
        reporting_controller: str,
        *,
        reporting_instance: str = "",
        series_window: float = 360.0,
    ) -> None:
        self._rest = rest
        self.reporting_controller = reporting_controller
        self.reporting_instance = reporting_instance or reporting_controller
        self._window = series_window
        self._series: dict[tuple[str, ...], _Series] = {}
        # One write at a time per event key, so concurrent repeats join one series instead of
        # racing to create two Events.
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def event(
        self,
        regarding: Mapping[str, Any],
        type_: EventType,
        reason: str,
        note: str,
        *,
        action: str = "Reconcile",
    ) -> None:
        """Record an event about ``regarding`` (an object dict with apiVersion/kind/metadata)."""
        task = asyncio.get_running_loop().create_task(
            self._record(regarding, type_, reason, note[:_NOTE_MAX], action)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _record(
        self, regarding: Mapping[str, Any], type_: EventType, reason: str, note: str, action: str
    ) -> None:
        m = regarding.get("metadata") or {}
        ns = m.get("namespace") or "default"
        key = (str(m.get("uid", "")), ns, str(m.get("name", "")), type_, reason, action, note)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            await self._record_locked(key, regarding, m, ns, type_, reason, note, action)

    async def _record_locked(
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
            self._expire(now)
        except ApiError as err:
            log.warning("Failed to record event", reason=reason, error=str(err))
        except Exception as err:  # never let event recording break anything
            log.warning("Failed to record event", reason=reason, error=repr(err))

    def _expire(self, now: float) -> None:
        if len(self._series) > 4096:
            for k in [k for k, s in self._series.items() if now - s.last_write >= self._window]:
                del self._series[k]
                lock = self._locks.get(k)
                if lock is not None and not lock.locked():
                    del self._locks[k]
