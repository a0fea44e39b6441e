"""The shared informer: reflector -> transform -> freeze -> store -> handlers.

Owns the store writer, the handler registrations and the sync state of one (kind, scope).
Fed by a ``Reflector`` over a ``ListerWatcher``; feeds event handlers (which enqueue keys) and
store readers (reconcilers, the cache-backed client).

Failures in user code, and what each costs (every one is logged with its traceback at error
level and counted on ``aimctl_informer_*_errors_total{kind,scope}``):

- An event handler raises: that handler misses that one event (no re-delivery; other handlers
  and later events are unaffected; a resync period, if set, replays the cache to it later).
- The transform raises: the object is stored as received (untransformed).
- An index function raises: the store refuses the write (``IndexFuncError``: an object is
  never cached without its index entries), and the informer relists after a backoff so the
  object is delivered again; a first list that hits one never syncs, and ``wait_for_sync``
  fails at once naming the index and the object. client-go panics instead
  (tools/cache/thread_safe_store.go): both are loud, neither loses an index entry silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from aimctl._internal.backoff import Backoff
from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.client import Forbidden, Object, Unauthorized
from aimctl.client._rest import Known
from aimctl.informers._events import (
    Apply,
    Delete,
    Failed,
    Init,
    InitApply,
    InitDone,
    ReflectorEvent,
)
from aimctl.informers._frozen import FrozenDict, freeze
from aimctl.informers._handlers import DeletedFinalStateUnknown, EventHandler
from aimctl.informers._listwatch import RestListerWatcher
from aimctl.informers._metrics import InformerMetrics, InformerMetricSet
from aimctl.informers._reflector import ListerWatcher, Reflector, ReflectorOptions
from aimctl.informers._store import IndexFuncError, Store, object_key
from aimctl.informers._transforms import Transform, strip_managed_fields

__all__ = ["HandlerRegistration", "InformerSyncError", "SharedInformer", "scope_label"]

log = structlog.get_logger(__name__)


def scope_label(
    namespace: str | None,
    label_selector: str | None,
    field_selector: str | None = None,
    metadata_only: bool = False,
) -> str:
    """What an informer caches, for logs and metric labels: ``""`` (everything), else
    ``namespace=<ns>``, ``labels=<selector>``, ``fields=<selector>``, ``metadata-only``
    joined by ``;`` in that order."""
    parts = []
    if namespace:
        parts.append(f"namespace={namespace}")
    if label_selector:
        parts.append(f"labels={label_selector}")
    if field_selector:
        parts.append(f"fields={field_selector}")
    if metadata_only:
        parts.append("metadata-only")
    return ";".join(parts)


class InformerSyncError(Exception):
    """An informer did not complete its first list: names the kind, scope and server's reason.

    Attributes:
        kind: ``group/version/Kind`` of the informer.
        scope: its namespace/selector (see ``scope_label``).
        error: the last list/watch failure (an ``ApiError`` carries the server's message), or
            None when nothing failed but time ran out.
        timed_out: True when raised because the timeout expired.
    """

    def __init__(
        self, kind: str, scope: str, error: BaseException | None, *, timed_out: bool, detail: str
    ) -> None:
        self.kind = kind
        self.scope = scope
        self.error = error
        self.timed_out = timed_out
        where = f"{kind} ({scope})" if scope else kind
        reason = f": {type(error).__name__}: {error}" if error is not None else ""
        super().__init__(f"informer for {where} {detail}{reason}")


class HandlerRegistration:
    """Returned by ``add_handler``; ``remove()`` stops deliveries (and the handler's resync)."""

    def __init__(
        self, informer: SharedInformer, handler: EventHandler, resync_period: float | None
    ) -> None:
        self.informer = informer
        self.handler = handler
        self.resync_period = resync_period
        self._task: asyncio.Task[None] | None = None

    def remove(self) -> None:
        self.informer._remove(self)


class SharedInformer:
    """An always-converging, read-only, indexed cache of one kind in one scope, with handlers.

    Guarantees:
        - One list and one watch per informer, however many handlers and readers it has.
        - The store holds exactly the server's objects as of the last event applied (after
          ``transform`` and freezing); after a relist it equals the relist's snapshot.
        - Handlers see every change in the order applied, after the store shows it (see
          ``EventHandler`` for the add/update/delete and tombstone rules). A relist delivers
          only real differences: objects whose resourceVersion is unchanged produce no event.
        - ``has_synced`` turns True after the first complete list and stays True.
        - Handler, transform and index-function exceptions are logged and counted and never
          stop the informer (see the module docstring for what each costs); the reflector
          retries list/watch failures by itself.

    Caller obligations:
        Handlers are synchronous, fast, and never call the API server. Transforms and index
        functions are pure and do not raise. Add indexers before reading by them (adding
        later indexes existing objects at once).

    Cancellation:
        ``stop()`` cancels the run task (closing the watch) and resync timers; the store keeps
        its last state. ``wait_for_sync`` is a cancellation point with no side effects.

    Args:
        lister_watcher: the source (kind, namespace, selector).
        transform: applied to each decoded object before it is frozen and stored; None for
            none. Default: ``strip_managed_fields``.
        options: reflector tuning (page size, timeouts, backoff, streaming list).
        resync_period: the resync period of handlers added without one (client-go's
            ``defaultEventHandlerResyncPeriod``). Default: None (no resync).
        metrics: metric families to add this informer's children to. Default: unexported.
        clock, sleep, rng: time, waiting and randomness (injectable for tests).
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        transform: Transform | None = strip_managed_fields,
        options: ReflectorOptions | None = None,
        resync_period: float | None = None,
        metrics: InformerMetrics | None = None,
        clock: Clock = MONOTONIC,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.lister_watcher = lister_watcher
        self.kind = lister_watcher.kind
        self.namespace = lister_watcher.namespace
        self.label_selector = lister_watcher.label_selector
        self.field_selector = lister_watcher.field_selector
        self.metadata_only = lister_watcher.metadata_only
        self.scope = scope_label(
            self.namespace, self.label_selector, self.field_selector, self.metadata_only
        )
        self.resync_period = _check_resync(resync_period)
        self.store = Store()
        self._writer = self.store.writer()
        self._transform = transform
        self._options = options or ReflectorOptions()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._metrics: InformerMetricSet = (metrics or InformerMetrics()).for_informer(
            self.kind, self.scope
        )
        self._metrics.count_objects(lambda: float(len(self.store)))
        self._log = log.bind(kind=self.kind, scope=self.scope)
        self._handlers: tuple[HandlerRegistration, ...] = ()
        self._buffer: dict[str, Object] | None = None  # the list in progress, by key
        self._synced = False
        self._last_error: BaseException | None = None
        self._changed = asyncio.Event()  # set (and replaced) on sync and on every failure
        self._task: asyncio.Task[None] | None = None
        self.reflector: Reflector | None = None

    # -- state ------------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return self._synced

    @property
    def last_error(self) -> BaseException | None:
        """The last list/watch failure (kept after recovery, for diagnosis)."""
        return self._last_error

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- handlers ---------------------------------------------------------------------------

    def add_handler(
        self, handler: EventHandler, resync_period: float | None = None
    ) -> HandlerRegistration:
        """Deliver this informer's events to ``handler``.

        A handler added after the first sync first gets every cached object as
        ``on_add(obj, is_initial_list=True)``, synchronously, before this returns.

        Args:
            resync_period: every ``resync_period`` seconds (x a random factor in [0.9, 1.1))
                replay the whole cache to this handler as ``on_update(o, o)``; no API call.
                0 disables; minimum otherwise 1 s. Default: None, the informer's
                ``resync_period``.

        Raises:
            ValueError: a resync period under 1 s (other than 0).
        """
        period = self.resync_period if resync_period is None else _check_resync(resync_period)
        reg = HandlerRegistration(self, handler, period)
        self._handlers = (*self._handlers, reg)
        if self._synced:
            for obj in list(self.store._items.values()):
                self._call(reg, "on_add", obj, True)
        if self.running:
            self._start_resync(reg)
        return reg

    def _remove(self, reg: HandlerRegistration) -> None:
        self._handlers = tuple(r for r in self._handlers if r is not reg)
        if reg._task is not None:
            reg._task.cancel()
            reg._task = None

    def _call(self, reg: HandlerRegistration, method: str, *args: Any) -> None:
        try:
            getattr(reg.handler, method)(*args)
        except Exception:
            self._metrics.handler_errors.value += 1
            self._log.exception("event handler raised", handler=repr(reg.handler), callback=method)

    def _notify(self, method: str, *args: Any) -> None:
        for reg in self._handlers:
            self._call(reg, method, *args)

    def _start_resync(self, reg: HandlerRegistration) -> None:
        if reg.resync_period is not None and reg._task is None:
            reg._task = asyncio.create_task(
                self._resync_loop(reg, reg.resync_period), name=f"resync {self.kind}"
            )

    async def _resync_loop(self, reg: HandlerRegistration, period: float) -> None:
        while True:
            await self._sleep(period * self._rng.uniform(0.9, 1.1))
            if self._synced and reg in self._handlers:
                for obj in list(self.store._items.values()):
                    self._call(reg, "on_update", obj, obj)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listing and watching in a background task (no-op when running)."""
        self.start_soon()

    def start_soon(self) -> None:
        """``start()`` for synchronous callers inside a running event loop.

        Raises:
            RuntimeError: no event loop is running.
        """
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"informer {self.kind}"
            )

    async def stop(self) -> None:
        """Stop the background task and resync timers; the store keeps its contents."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """List, watch and dispatch until cancelled (what ``start()`` runs in a task)."""
        for reg in self._handlers:
            self._start_resync(reg)
        crashes = Backoff(self._options.backoff, clock=self._clock, rng=self._rng)
        try:
            while True:
                self.reflector = Reflector(
                    self.lister_watcher,
                    options=self._options,
                    metrics=self._metrics,
                    clock=self._clock,
                    sleep=self._sleep,
                    rng=self._rng,
                )
                try:
                    async with contextlib.aclosing(self.reflector.run()) as events:
                        async for event in events:
                            self._apply(event)
                except IndexFuncError as e:
                    # Re-deliver: a relist offers the object again (and again, loudly, until
                    # the index function is fixed). The store was left consistent.
                    delay = crashes.next_delay()
                    self._last_error = e
                    self._wake()
                    self._log.exception(
                        "index function failed; relisting", index=e.index, retry_in=delay
                    )
                    await self._sleep(delay)
                except Exception as e:  # a bug; never let it kill the informer
                    delay = crashes.next_delay()
                    self._last_error = e
                    self._wake()
                    self._log.exception("informer loop crashed; restarting", retry_in=delay)
                    await self._sleep(delay)
        finally:
            for reg in self._handlers:
                if reg._task is not None:
                    reg._task.cancel()
                    reg._task = None

    async def wait_for_sync(self, timeout: float | None = None, *, fail_fast: bool = True) -> None:  # noqa: ASYNC109
        """Wait for the first complete list.

        Args:
            timeout: seconds to wait; None waits forever.
            fail_fast: raise at the first 401/403 or ``IndexFuncError`` instead of waiting
                out the timeout (the informer keeps retrying in the background either way).

        Raises:
            InformerSyncError: the timeout expired, or (``fail_fast``) the server refused the
                list or an index function failed on a listed object; the message names the
                kind, the scope and the reason.
        """
        try:
            async with asyncio.timeout(timeout):
                while not self._synced:
                    error = self._last_error
                    if fail_fast and isinstance(error, Unauthorized | Forbidden | IndexFuncError):
                        raise InformerSyncError(
                            self.kind, self.scope, error, timed_out=False, detail="cannot sync"
                        )
                    await self._changed.wait()
        except TimeoutError:
            if self._synced:
                return
            detail = (
                f"did not sync within {timeout}s"
                if self._task is not None
                else f"was never started (waited {timeout}s)"
            )
            raise InformerSyncError(
                self.kind, self.scope, self._last_error, timed_out=True, detail=detail
            ) from None

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- applying reflector events ----------------------------------------------------------

    def _apply(self, event: ReflectorEvent) -> None:
        t = type(event)
        if t is Apply:
            self._on_apply(event.object)  # type: ignore[union-attr]
        elif t is Delete:
            self._on_delete(event.object)  # type: ignore[union-attr]
        elif t is InitApply:
            self._on_init_apply(event.object)  # type: ignore[union-attr]
        elif t is Init:
            self._buffer = {}
        elif t is InitDone:
            self._on_init_done()
        elif t is Failed:
            assert isinstance(event, Failed)
            self._last_error = event.error
            self._wake()

    def take_echoes(self, known: Known) -> bool:
        """Have the watch hand over, undecoded, objects ``known`` already holds as this informer
        would store them (``RecentWrites.echoes``: the answers of this process's own writes,
        managed fields stripped and frozen). Only an informer of whole objects with the default
        transform stores objects in that form; any other declines (returns False)."""
        lw = self.lister_watcher
        if self._transform is not strip_managed_fields or self.metadata_only:
            return False
        if not isinstance(lw, RestListerWatcher):
            return False
        lw.known = known
        return True

    def _prepare(self, raw: Object) -> Object:
        if type(raw) is FrozenDict:
            return raw  # handed over by ``take_echoes``'s source: transformed and frozen
        if self._transform is not None:
            try:
                raw = self._transform(raw)
            except Exception:
                self._metrics.transform_errors.value += 1
                self._log.exception("transform raised; storing the object as received")
        return freeze(raw)

    def _upsert(self, key: str, obj: Object) -> Object | None:
        try:
            return self._writer.upsert(key, obj)
        except IndexFuncError as e:
            self._metrics.index_errors.value += 1
            self._log.error("index function failed; object not stored", index=e.index, key=key)
            raise

    def _on_init_apply(self, raw: Object) -> None:
        if self._buffer is None:  # tolerate a missing Init
            self._buffer = {}
        try:
            key = object_key(raw)
        except (KeyError, TypeError):
            self._log.warning("object without metadata.name ignored")
            return
        cached = self.store._items.get(key)
        if cached is not None and _rv(cached) == _rv(raw) and _rv(raw):
            self._buffer[key] = cached  # unchanged: keep the frozen object, skip the work
        else:
            self._buffer[key] = self._prepare(raw)

    def _on_init_done(self) -> None:
        buffer, self._buffer = self._buffer or {}, None
        initial = not self._synced
        items = self.store._items
        # In list order: (None, new) for an add, (old, new) for an update.
        changes: list[tuple[Object | None, Object]] = []
        failed: IndexFuncError | None = None
        for key, obj in buffer.items():
            old = items.get(key)
            if old is obj:
                continue
            try:
                self._upsert(key, obj)
            except IndexFuncError as e:
                failed = failed or e  # the others are applied and delivered; then relist
                continue
            changes.append((old, obj))
        gone = [key for key in items if key not in buffer]
        deleted = [DeletedFinalStateUnknown(key, self._writer.delete(key) or {}) for key in gone]
        if self._synced:
            self._log.info("relisted", changed=len(changes), deleted=len(deleted))
        elif failed is None:  # a list with a refused object does not sync the cache
            self._synced = True
            self._last_error = None
            self._metrics.synced.set(1)
            self._log.info("informer synced", objects=len(items))
            self._wake()
        for old, new in changes:
            if old is None:
                self._notify("on_add", new, initial)
            else:
                self._notify("on_update", old, new)
        for tombstone in deleted:
            self._notify("on_delete", tombstone)
        if failed is not None:
            raise failed

    def _on_apply(self, raw: Object) -> None:
        try:
            key = object_key(raw)
        except (KeyError, TypeError):
            self._log.warning("watch event without metadata.name ignored")
            return
        obj = self._prepare(raw)
        old = self._upsert(key, obj)
        if old is None:
            self._notify("on_add", obj, False)
        else:
            self._notify("on_update", old, obj)

    def _on_delete(self, raw: Object) -> None:
        try:
            key = object_key(raw)
        except (KeyError, TypeError):
            self._log.warning("watch event without metadata.name ignored")
            return
        obj = self._prepare(raw)
        self._writer.delete(key)
        self._notify("on_delete", obj)


def _check_resync(period: float | None) -> float | None:
    if period is not None and period != 0 and period < 1.0:
        raise ValueError("resync_period must be 0 (none) or at least 1 second")
    return period or None


def _rv(obj: Object) -> str | None:
    md = obj.get("metadata")
    return md.get("resourceVersion") if isinstance(md, dict) else None
