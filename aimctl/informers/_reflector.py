"""The reflector: list, then watch, forever; recovers from every failure by itself. Owns no cache.

Owns the list/watch state: the last resourceVersion seen, whether a (re)list is due, whether
the server supports streaming lists, and the backoff. Fed by a ``ListerWatcher`` (the REST
client for one kind and scope); feeds a stream of ``ReflectorEvent`` to the informer.

State machine (client-go's ``tools/cache/reflector.go`` semantics, kube-rs's shape):

- **Listing.** Either a *streaming list* (KEP-3157: a watch with ``sendInitialEvents=true``,
  ``resourceVersionMatch=NotOlderThan``; the initial state arrives as ADDED events and ends with
  a BOOKMARK annotated ``k8s.io/initial-events-end: "true"``; the same connection then carries
  on as a normal watch), or a *paginated list* (``limit=500``). The first list reads the latest
  state (``resourceVersion=""``, a consistent read). A relist after 410 first asks for
  ``resourceVersion=<last seen>`` with ``NotOlderThan`` (cheap, served from the watch cache)
  and, if that fails with 410 too, for ``""``. An expired continue token restarts with ``""``.
- **Watching** from the last resourceVersion with ``allowWatchBookmarks=true`` and a server
  ``timeoutSeconds`` drawn uniformly from [5 min, 10 min) per watch; bookmarks only advance the
  resourceVersion. A watch the server ends normally is re-opened at once from the last
  resourceVersion (no relist).

Recovery:
- 410 Gone on a watch: relist (immediately if the watch had been up at least
  ``min_watch_duration``, else after a backoff).
- The inactivity deadline on a watch: re-open at once from the last resourceVersion (logged
  at info, counted as ``stalled``). A bookmark carries the newest resourceVersion the API
  server has seen for the kind and is sent only when it is newer than the watch's (apiserver
  ``cacheWatcher.process``), so a kind nobody changes gets none and hits the deadline in
  normal operation; the deadline itself keeps the attempts apart.
- Anything else (connection refused or dropped, ``aiohttp.ClientPayloadError``, 429, 5xx,
  401/403, ``NoKindMatch``, the inactivity deadline on a list, a watch closed within
  ``min_watch_duration`` with no events): wait a backoff (0.8 s doubling to 30 s, jitter
  +0-100 %, reset after 2 min without failures; at least a 429's Retry-After), then resume:
  watch from the last resourceVersion, or list if none.
- Streaming list refused by the server (400/422) or ended without its closing bookmark: fall
  back to paginated lists for the rest of the reflector's life (``initial_list="auto"``).

Cancellation: ``run()`` is an async generator; cancelling its consumer closes the open watch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

from aimctl._internal.backoff import Backoff, BackoffPolicy
from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.client import (
    ApiError,
    BadRequest,
    Gone,
    Invalid,
    NoKindMatch,
    Object,
    TooManyRequests,
    TransportError,
    WatchEvent,
    WatchStalled,
)
from aimctl.informers._events import (
    Apply,
    Delete,
    Failed,
    Init,
    InitApply,
    InitDone,
    ReflectorEvent,
)
from aimctl.informers._metrics import InformerMetricSet

__all__ = [
    "INITIAL_EVENTS_END",
    "EventStream",
    "ListerWatcher",
    "Reflector",
    "ReflectorOptions",
]

log = structlog.get_logger(__name__)

INITIAL_EVENTS_END = "k8s.io/initial-events-end"

# What the reflector recovers from; anything else is a bug and propagates.
RECOVERABLE = (ApiError, TransportError, NoKindMatch)


class EventStream(Protocol):
    """An open watch (``aimctl.client.WatchStream`` is one)."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def aclose(self) -> None: ...


class ListerWatcher(Protocol):
    """Lists and watches one kind in one scope; adds its own namespace and selectors.

    ``list`` returns a decoded ``*List`` object; ``watch`` opens a watch. Both raise
    ``ApiError``/``TransportError``/``NoKindMatch`` on failure. ``metadata_only`` says the
    objects are ``PartialObjectMetadata`` (apiVersion, kind and metadata only).
    """

    @property
    def kind(self) -> str: ...

    @property
    def namespace(self) -> str | None: ...

    @property
    def label_selector(self) -> str | None: ...

    @property
    def field_selector(self) -> str | None: ...

    @property
    def metadata_only(self) -> bool: ...

    async def list(self, params: dict[str, str]) -> Object: ...

    async def watch(
        self, params: dict[str, str], *, inactivity_timeout: float | None
    ) -> EventStream: ...


@dataclass(frozen=True)
class ReflectorOptions:
    """Tuning of list and watch.

    Attributes:
        page_size: items per list page. Default: 500 (client-go, kube-rs).
        watch_timeout: the server ``timeoutSeconds`` is drawn from ``[lo, hi)`` per watch.
            Default: (300, 600), as client-go.
        inactivity_timeout: re-establish a watch that sent nothing, not even a bookmark, for
            this many seconds (kopf's lesson, nolar/kopf#698; the API server sends bookmarks
            about every 60 s). None disables. Default: 70.
        initial_list: ``"auto"`` tries a streaming list and falls back to paginated lists if
            the server refuses; ``"stream"`` or ``"list"`` force one. Default: "auto".
        backoff: delays between failed attempts. Default: 0.8 s -> 30 s, x2, jitter, reset 2 min.
        min_watch_duration: a watch ending sooner than this with no events counts as a failure
            (client-go's "very short watch"); one that lasted longer relists without delay
            on 410. Default: 1.0.
    """

    page_size: int = 500
    watch_timeout: tuple[float, float] = (300.0, 600.0)
    inactivity_timeout: float | None = 70.0
    initial_list: Literal["auto", "stream", "list"] = "auto"
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    min_watch_duration: float = 1.0


class _StreamUnsupported(Exception):
    """The server does not do streaming lists; fall back to paginated lists."""


class Reflector:
    """Turns list + watch into a stream of ``ReflectorEvent`` that never ends by itself.

    Guarantees:
        - Events follow the grammar in ``aimctl.informers._events``: ``Init``, ``InitApply``*,
          ``InitDone``, then ``Apply``/``Delete`` in the server's order, with ``Failed`` for
          every failed attempt and a fresh ``Init`` for every relist.
        - Every change after a completed list is delivered, either as a watch event or, if
          the watch lost its place (410), through the relist's ``InitDone`` snapshot.
        - List items get ``apiVersion`` and ``kind`` filled in (typed lists omit them).

    Caller obligations:
        Consume promptly: the watch is read only while ``run()`` is iterated.

    Args:
        lister_watcher: the source for one kind and scope.
        options: see ``ReflectorOptions``.
        metrics: children to bump (lists, relists, watches, errors, resourceVersion age).
        clock: monotonic time source. Default: the process clock.
        sleep: how backoff waits are taken. Default: ``asyncio.sleep``.
        rng: random source for jitter and watch timeouts. Default: a new ``random.Random``.
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        options: ReflectorOptions | None = None,
        metrics: InformerMetricSet | None = None,
        clock: Clock = MONOTONIC,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._lw = lister_watcher
        self.options = options or ReflectorOptions()
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.backoff = Backoff(self.options.backoff, clock=clock, rng=self._rng)
        self._log = log.bind(kind=lister_watcher.kind)
        # The resourceVersion of the last list or watch event; None until the first list.
        self._rv: str | None = None
        # A list is due (first start, or the watch lost its place with 410).
        self._need_list = True
        # resourceVersion for the next (re)list with NotOlderThan; None means "" (latest).
        self._relist_rv: str | None = None
        self._listed_once = False
        # None: untested; False: fall back to paginated lists.
        self._stream_ok: bool | None = {"auto": None, "stream": True, "list": False}[
            self.options.initial_list
        ]
        self._last_seen: float | None = None  # clock time of the last event or bookmark
        self._phase: Literal["list", "watch"] = "list"
        if metrics is not None:
            metrics.rv_age_from(self._rv_age)

    @property
    def streaming_list(self) -> bool | None:
        """Whether lists are streamed (True), paginated (False), or not yet known (None)."""
        return self._stream_ok

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion seen (from a list, an event or a bookmark)."""
        return self._rv

    def _rv_age(self) -> float:
        return -1.0 if self._last_seen is None else self._clock.now() - self._last_seen

    def _seen(self, rv: str | None) -> None:
        self._last_seen = self._clock.now()
        if rv:
            self._rv = rv

    async def run(self) -> AsyncGenerator[ReflectorEvent, None]:
        """List and watch until cancelled; see the module docstring for the recovery rules."""
        while True:
            watch_started = self._clock.now()
            healthy = False
            try:
                if self._need_list and self._stream_ok is not False:
                    async for ev in self._watch(initial=True):
                        yield ev
                else:
                    if self._need_list:
                        async for ev in self._list():
                            yield ev
                    watch_started = self._clock.now()
                    async for ev in self._watch(initial=False):
                        yield ev
            except _StreamUnsupported as e:
                self._log.info("streaming list unsupported; using paginated lists", reason=str(e))
                self._stream_ok = False
                continue
            except Gone as e:
                healthy = self._clock.now() - watch_started >= self.options.min_watch_duration
                self._count_error(e)
                if self._phase == "watch":
                    # Lost our place: relist, first at the last resourceVersion.
                    self._need_list = True
                    self._relist_rv = self._rv
                else:
                    # The list itself was too old (RV or continue token): read the latest.
                    self._relist_rv = None
                delay = 0.0 if healthy and self._phase == "watch" else self.backoff.next_delay()
                self._log.info("resourceVersion expired; relisting", error=str(e), retry_in=delay)
                yield Failed(e, delay, self._phase)
                if delay:
                    await self._sleep(delay)
            except RECOVERABLE as e:
                self._count_error(e)
                # A kind nobody changes gets no bookmarks either, so its watch goes quiet: the
                # deadline already spaced the attempts, re-open at once and without alarm.
                quiet = isinstance(e, WatchStalled) and self._phase == "watch"
                delay = 0.0 if quiet else self.backoff.next_delay()
                if isinstance(e, TooManyRequests) and e.retry_after:
                    delay = max(delay, e.retry_after)
                (self._log.info if quiet else self._log.warning)(
                    "list failed" if self._phase == "list" else "watch failed",
                    error=str(e),
                    error_type=type(e).__name__,
                    retry_in=round(delay, 3),
                    resource_version=self._rv,
                )
                yield Failed(e, delay, self._phase)
                if delay:
                    await self._sleep(delay)

    def _count_error(self, error: BaseException) -> None:
        if self._metrics is None:
            return
        if self._phase == "list":
            self._metrics.list_error(error)
        else:
            self._metrics.watch_error(error)

    def _list_done(self, rv: str) -> InitDone:
        self._need_list = False
        self._relist_rv = None
        self._seen(rv)
        if self._metrics is not None:
            self._metrics.lists.value += 1
            if self._listed_once:
                self._metrics.relists.value += 1
        self._listed_once = True
        return InitDone(rv)

    async def _list(self) -> AsyncIterator[ReflectorEvent]:
        self._phase = "list"
        params = {"limit": str(self.options.page_size)}
        if self._relist_rv:
            params["resourceVersion"] = self._relist_rv
            params["resourceVersionMatch"] = "NotOlderThan"
        yield Init(relist=self._listed_once)
        while True:
            page = await self._lw.list(params)
            meta = page.get("metadata") or {}
            api_version = page.get("apiVersion")
            list_kind = page.get("kind")
            item_kind = (
                list_kind[:-4]
                if isinstance(list_kind, str) and list_kind.endswith("List")
                else None
            )
            for item in page.get("items") or ():
                if api_version and "apiVersion" not in item:
                    item["apiVersion"] = api_version
                if item_kind and "kind" not in item:
                    item["kind"] = item_kind
                yield InitApply(item)
            cont = meta.get("continue")
            if not cont:
                yield self._list_done(str(meta.get("resourceVersion", "")))
                return
            # A continue token carries its own resourceVersion; the server rejects both.
            params = {"limit": str(self.options.page_size), "continue": cont}

    async def _watch(self, *, initial: bool) -> AsyncIterator[ReflectorEvent]:
        opts = self.options
        lo, hi = opts.watch_timeout
        params = {
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(int(self._rng.uniform(lo, hi))),
        }
        if initial:
            self._phase = "list"
            params["sendInitialEvents"] = "true"
            params["resourceVersionMatch"] = "NotOlderThan"
            params["resourceVersion"] = self._relist_rv or ""
        else:
            self._phase = "watch"
            assert self._rv is not None
            params["resourceVersion"] = self._rv
        started = self._clock.now()
        events = 0
        init_sent = False
        stream: EventStream | None = None
        try:
            stream = await self._lw.watch(params, inactivity_timeout=opts.inactivity_timeout)
            if self._metrics is not None:
                self._metrics.watches.value += 1
            async for event in stream:
                events += 1
                obj = event.object
                md = obj.get("metadata") or {}
                rv = md.get("resourceVersion")
                if initial and not init_sent:
                    # Sent with the first event, so a refused stream yields nothing at all.
                    init_sent = True
                    yield Init(relist=self._listed_once)
                if event.type == "BOOKMARK":
                    if initial:
                        if (md.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                            initial = False
                            self._stream_ok = True
                            yield self._list_done(str(rv or ""))
                            self._phase = "watch"
                        else:
                            self._seen(None)
                    else:
                        self._seen(rv)
                    continue
                if initial:
                    # Synthetic ADDED events are not ordered by resourceVersion: the closing
                    # bookmark, not these, sets where the watch stands.
                    self._seen(None)
                    yield InitApply(obj)
                    continue
                self._seen(rv)
                if event.type == "DELETED":
                    yield Delete(obj)
                else:
                    yield Apply(obj)
        except (BadRequest, Invalid) as e:
            if initial and events == 0 and self._stream_ok is None:
                raise _StreamUnsupported(str(e)) from e
            raise
        finally:
            if stream is not None:
                await stream.aclose()
        # The server closed the stream cleanly.
        if initial:
            if self._stream_ok is None:
                raise _StreamUnsupported("the watch ended before the initial-events-end bookmark")
            raise TransportError("streaming list ended before its initial-events-end bookmark")
        if events == 0 and self._clock.now() - started < opts.min_watch_duration:
            raise TransportError("very short watch: closed at once with no events")
