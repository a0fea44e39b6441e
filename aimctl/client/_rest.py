"""Raw JSON over one aiohttp session: requests, watch streams, request counters, client-side QPS.

Owns the HTTP session and the request counters. Feeds decoded JSON (``Object``) to the mapper,
the informers' reflector and (later) the cache-backed ``Client``. Knows nothing about kinds.

JSON: bodies are decoded with orjson: 2-4x faster than ``json.loads`` on 10,000-ConfigMap list
pages, and on watch events (one object per line) about a third less memory, because its key
cache shares dict-key strings across lines (docs/bench-results/informer.md).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Final
from weakref import WeakKeyDictionary

import aiohttp
import orjson
import structlog
from prometheus_client.registry import CollectorRegistry

from aimctl import __version__
from aimctl.client._config import ClusterConfig, load_incluster, load_kubeconfig
from aimctl.client._errors import (
    TransportError,
    Unauthorized,
    WatchStalled,
    api_error_from_status,
)
from aimctl.client._types import Object, WatchEvent, WatchEventType
from aimctl.metrics import CounterFamily, FamilyCollector

__all__ = ["Known", "RestClient", "RestStats", "TokenBucket", "WatchStream"]

log = structlog.get_logger(__name__)

Params = Mapping[str, str | int | float | bool | None]

WRITE_VERBS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)
# The connection could not be opened: the request never reached the server.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_USER_AGENT: Final = f"aimctl/{__version__}"


@dataclass
class RestStats:
    """Plain per-verb request counters, for tests and debugging (``rest.stats``).

    ``requests`` counts every request sent (watches are GETs too); ``watches`` counts watch
    requests separately; ``writes`` is the number of POST/PUT/PATCH/DELETE requests.
    """

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    watches: int = 0

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.requests.items() if verb in WRITE_VERBS)

    def reset(self) -> None:
        self.requests.clear()
        self.watches = 0


class _RequestMetrics:
    """``rest_client_requests_total{code,method,host}``, one family per registry."""

    _by_registry: ClassVar[WeakKeyDictionary[CollectorRegistry, _RequestMetrics]] = (
        WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self.requests = CounterFamily(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ("code", "method", "host"),
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None) -> _RequestMetrics:
        if registry is None:
            return cls()
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls()
            FamilyCollector([metrics.requests]).register(registry)
        return metrics


class TokenBucket:
    """Client-side rate limit: ``qps`` tokens per second, at most ``burst`` saved up.

    Guarantees: callers are served in call order (each takes a reservation), and over any
    window of ``t`` seconds at most ``burst + qps * t`` calls return.
    Cancellation: a caller cancelled while waiting still consumed its token.
    """

    def __init__(self, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)  # may go negative: reservations not yet due
        self._last = time.monotonic()

    def reserve(self) -> float:
        """Take a token; returns the seconds to wait before using it."""
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class RestClient:
    """Kubernetes REST over one aiohttp session, returning and accepting decoded JSON.

    Guarantees:
        - ``request()`` returns the decoded JSON body of a 2xx answer; any other answer raises
          the ``ApiError`` subclass for its status, built from the server's Status object; a
          request with no usable answer raises ``TransportError`` (``request_sent`` False
          when the connection could not even be opened). Nothing is retried except one retry
          after a 401 when the credentials can be refreshed (exec plugins): not even aiohttp's
          own resend of PUT/DELETE on a dropped connection.
        - Every request increments ``rest_client_requests_total{code,method,host}`` (code
          ``"<error>"`` when there was no answer, as client-go) and ``stats``.
        - ``watch()`` yields events in the order the server sent them.

    Caller obligations:
        Use from one event loop. Call ``aclose()`` (or use ``async with``) when done.

    Cancellation:
        Every ``async`` method is a cancellation point; a cancelled request leaves no state
        behind (its connection is released). A cancelled watch closes its connection.

    Args:
        config: where the server is and how to authenticate.
        registry: where ``rest_client_requests_total`` is exported. Default: not exported.
        qps, burst: client-side rate limit; ``qps=None`` disables it (the default, as
            controller-runtime since v0.21, which relies on API Priority and Fairness).
        request_timeout: total seconds for one non-watch request. Default: 60.
        max_connections: connection pool size; 0 = unlimited (each watch holds one HTTP/1.1
            connection for its lifetime). Default: 0.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        registry: CollectorRegistry | None = None,
        qps: float | None = None,
        burst: int = 10,
        request_timeout: float = 60.0,
        max_connections: int = 0,
    ) -> None:
        self.config = config
        self.host = config.host_port
        self.stats = RestStats()
        self._metrics = _RequestMetrics.for_registry(registry)
        self._limiter = TokenBucket(qps, burst) if qps is not None else None
        self._request_timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # -- construction ---------------------------------------------------------------------

    @classmethod
    async def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, **options: Any
    ) -> RestClient:
        """A client for a kubeconfig file and context (see ``load_kubeconfig``)."""
        return cls(await load_kubeconfig(path, context), **options)

    @classmethod
    async def from_incluster(cls, **options: Any) -> RestClient:
        """A client for the pod's service account."""
        return cls(await load_incluster(), **options)

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session. Open watch streams end with ``TransportError``."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("RestClient is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=self.config.ssl_context or False
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
                read_bufsize=2**21,
            )
            # aiohttp silently resends PUT and DELETE once when a connection drops mid-request
            # (RFC 9112 9.3.1.1 allows it for idempotent methods), which re-runs an
            # unconditional delete and hides that the first one landed. Whether a request may
            # be resent is the caller's decision (``Client``); aiohttp offers this switch only
            # as an attribute (its own test_utils sets it the same way).
            self._session._retry_connection = False
        return self._session

    # -- requests -------------------------------------------------------------------------

    def _count(self, method: str, code: str) -> None:
        self.stats.requests[method] += 1
        self._metrics.requests.labels(code, method, self.host).value += 1

    async def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        data: bytes | None,
        headers: dict[str, str],
        client_timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """Send once, with auth; the caller reads and releases the response."""
        if self._limiter is not None:
            await self._limiter.acquire()
        session = self._get_session()
        headers = {**headers, **(await self.config.auth_headers())}
        try:
            resp = await session.request(
                method,
                self.config.host + path,
                params=_encode_params(params),
                data=data,
                headers=headers,
                timeout=client_timeout,
                proxy=self.config.proxy,
                server_hostname=self.config.tls_server_name,
            )
        except _TRANSPORT_ERRORS as e:
            self._count(method, "<error>")
            raise TransportError(
                f"{method} {path}: {type(e).__name__}: {e}",
                request_sent=not isinstance(e, _NOT_SENT),
            ) from e
        self._count(method, str(resp.status))
        return resp

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | list[Any] | bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> Object:
        """One request; returns the decoded JSON body.

        Args:
            method: HTTP verb, e.g. ``"GET"``, ``"PATCH"``.
            path: absolute API path, e.g. ``/api/v1/namespaces/default/configmaps``.
            params: query parameters; booleans become ``true``/``false``, None is dropped.
            body: an object (sent as JSON), a list (a JSON patch) or raw bytes.
            content_type: e.g. ``application/apply-patch+yaml`` or
                ``application/merge-patch+json``. Default: ``application/json`` with a body.
            accept: the ``Accept`` header, e.g. ``application/json;as=PartialObjectMetadataList;
                g=meta.k8s.io;v=v1`` for metadata only. Default: ``application/json``.

        Raises:
            ApiError: a subclass per status (NotFound, Conflict, ...), from the Status body.
            TransportError: no usable answer (connection, TLS, timeout, truncated body).
        """
        return (
            await self.request_with_body(
                method, path, params=params, body=body, content_type=content_type, accept=accept
            )
        )[0]

    async def request_with_body(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | list[Any] | bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> tuple[Object, bytes]:
        """As :meth:`request`, and the answer's body as received (for ``RecentWrites``: the
        watch event of a write carries the same bytes, see ``WatchStream``)."""
        method = method.upper()
        if body is None or isinstance(body, bytes):
            data = body
        elif content_type == APPLY_YAML:
            data = _dumps_yaml_safe(body)
        else:
            data = _dumps(body)
        headers: dict[str, str] = {}
        if data is not None:
            headers["Content-Type"] = content_type or "application/json"
        if accept is not None:
            headers["Accept"] = accept
        for attempt in (1, 2):
            resp = await self._send(method, path, params, data, headers, self._request_timeout)
            try:
                try:
                    raw = await resp.read()
                except _TRANSPORT_ERRORS as e:
                    raise TransportError(f"{method} {path}: {type(e).__name__}: {e}") from e
                if resp.status < 400:
                    return _decode_body(raw, resp.content_type), raw
                error = api_error_from_status(
                    resp.status,
                    _decode_error_body(raw),
                    method=method,
                    path=path,
                    retry_after_header=resp.headers.get("Retry-After"),
                )
            finally:
                resp.release()
            if (
                isinstance(error, Unauthorized)
                and attempt == 1
                and await self.config.refresh_credentials()
            ):
                continue
            raise error
        raise AssertionError("unreachable")

    def watch(
        self,
        path: str,
        params: Params | None = None,
        *,
        inactivity_timeout: float | None = None,
        accept: str | None = None,
        known: Known | None = None,
    ) -> WatchStream:
        """Open a watch on a collection path; iterate the result for ``WatchEvent`` s.

        ``watch=true`` is added to ``params``. The request is sent on the first iteration.
        See ``WatchStream`` for the guarantees; use ``async with rest.watch(...) as events``.
        ``accept`` sets the ``Accept`` header (default ``application/json``); ``known``: see
        ``WatchStream``.
        """
        return WatchStream(
            self,
            path,
            {**(params or {}), "watch": True},
            inactivity_timeout,
            accept=accept,
            known=known,
        )


class WatchStream:
    """An open watch: an async iterator of ``WatchEvent`` read from line-delimited JSON.

    Guarantees:
        - Lines are decoded incrementally as they arrive; a line may be up to
          ``MAX_LINE_BYTES`` (64 MiB) long, however the server chunks it.
        - ``BOOKMARK`` events are yielded (their object carries only the resourceVersion and
          annotations); ``ERROR`` events raise the ``ApiError`` built from their Status.
        - The iterator ends (``StopAsyncIteration``) when the server closes the stream cleanly
          (for example at ``timeoutSeconds``).
        - ``known`` (optional) is asked, before decoding, for the object of every ADDED or
          MODIFIED event with that event's object bytes; what it returns is the event's object,
          undecoded. It answers only for bytes identical to a write's answer it kept (the API
          server encodes an object version the same way in both), so an operator does not
          decode again the echo of each of its own writes (docs/benchmarks.md, converge).

    Raises (from ``__anext__``):
        ApiError: the watch request was refused (403, 410, ...) or an ERROR event arrived.
        WatchStalled: nothing arrived for ``inactivity_timeout`` seconds.
        TransportError: the connection broke (reset, truncated chunked body, ...).

    Cancellation: ``aclose()`` (called by ``async with``) releases the connection; a cancelled
    ``__anext__`` leaves the stream unusable, so close it.
    """

    MAX_LINE_BYTES: Final = 64 * 2**20

    def __init__(
        self,
        rest: RestClient,
        path: str,
        params: Params,
        inactivity_timeout: float | None,
        *,
        accept: str | None = None,
        known: Known | None = None,
    ) -> None:
        self._rest = rest
        self._known = known
        self._headers = {"Accept": accept} if accept is not None else {}
        self._path = path
        self._params = params
        self._inactivity = inactivity_timeout
        self._resp: aiohttp.ClientResponse | None = None
        self._lines: collections.deque[bytes] = collections.deque()
        self._partial: list[bytes] = []  # pieces of an incomplete line
        self._partial_size = 0
        self._eof = False
        self._closed = False
        # One inactivity timer per stream, pushed forward lazily (``_watch``): arming and
        # cancelling one per read cost ~3.4 us, and a watch event often is one read.
        self._reader: asyncio.Task[Any] | None = None  # the task waiting for data, if any
        self._waiting_since = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._stalled = False

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def aclose(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    async def _open(self) -> aiohttp.ClientResponse:
        rest = self._rest
        rest.stats.watches += 1
        # No total timeout: the server ends the watch at timeoutSeconds; inactivity is ours.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        resp = await rest._send("GET", self._path, self._params, None, self._headers, timeout)
        if resp.status >= 400:
            try:
                raw = await resp.read()
            except _TRANSPORT_ERRORS:
                raw = b""
            finally:
                resp.release()
            raise api_error_from_status(
                resp.status,
                _decode_error_body(raw),
                method="GET",
                path=self._path,
                retry_after_header=resp.headers.get("Retry-After"),
            )
        return resp

    async def __anext__(self) -> WatchEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._resp is None:
            if self._inactivity is None:
                self._resp = await self._open()
            else:
                try:
                    async with asyncio.timeout(self._inactivity):
                        self._resp = await self._open()
                except TimeoutError as e:
                    msg = f"watch {self._path}: no answer in {self._inactivity}s"
                    raise WatchStalled(msg) from e
        while True:
            while self._lines:
                line = self._lines.popleft()
                if line and not line.isspace():  # as line.strip(), without copying the line
                    return self._decode(line)
            if self._eof:
                raise StopAsyncIteration
            await self._fill()

    async def _fill(self) -> None:
        assert self._resp is not None
        content = self._resp.content
        try:
            # What already arrived is taken without arming the inactivity timer (a timer per
            # read was ~1.5% of the operator's CPU in a 1000-cache converge, py-spy); b"" means
            # nothing buffered (or the end), and the timed read below decides which.
            chunk = content.read_nowait()
            if chunk:
                pass
            elif self._inactivity is None:
                chunk = await content.readany()
            else:
                chunk = await self._read_watched(content)
        except _TRANSPORT_ERRORS as e:
            raise TransportError(f"watch {self._path}: {type(e).__name__}: {e}") from e
        if not chunk:
            self._eof = True
            if self._partial:
                self._lines.append(b"".join(self._partial))
                self._partial.clear()
            return
        if b"\n" not in chunk:
            self._partial.append(chunk)
            self._partial_size += len(chunk)
            if self._partial_size > self.MAX_LINE_BYTES:
                msg = f"watch {self._path}: event line over {self.MAX_LINE_BYTES} bytes"
                raise TransportError(msg)
            return
        pieces = chunk.split(b"\n")
        first = pieces[0]
        if self._partial:
            self._partial.append(first)
            first = b"".join(self._partial)
            self._partial.clear()
        self._partial_size = 0
        self._lines.append(first)
        self._lines.extend(pieces[1:-1])
        if pieces[-1]:
            self._partial.append(pieces[-1])
            self._partial_size = len(pieces[-1])

    async def _read_watched(self, content: aiohttp.StreamReader) -> bytes:
        """``content.readany()``, failing with WatchStalled when it waits ``_inactivity``
        seconds. As ``asyncio.timeout`` does, the stall is a cancellation of this task that
        only this stream may turn into WatchStalled: any other cancellation propagates."""
        assert self._inactivity is not None
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self._reader = task
        self._waiting_since = loop.time()
        if self._watchdog is None:
            self._watchdog = loop.call_at(self._waiting_since + self._inactivity, self._watch)
        try:
            return await content.readany()
        except asyncio.CancelledError:
            if self._stalled:
                self._stalled = False
                if task.uncancel() <= cancelling:
                    raise WatchStalled(
                        f"watch {self._path}: nothing received for {self._inactivity}s"
                    ) from None
            raise
        finally:
            self._reader = None
            if self._stalled:  # fired as the read ended otherwise: take the cancellation back
                self._stalled = False
                task.uncancel()

    def _watch(self) -> None:
        """The timer: a read waiting for ``_inactivity`` seconds is cancelled as stalled; one
        that started later moves the timer to its own deadline; with no read waiting the timer
        stops (the next wait arms it)."""
        self._watchdog = None
        if self._reader is None or self._inactivity is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        deadline = self._waiting_since + self._inactivity
        if loop.time() < deadline:
            self._watchdog = loop.call_at(deadline, self._watch)
            return
        self._stalled = True
        self._reader.cancel()

    def _decode(self, line: bytes) -> WatchEvent:
        if self._known is not None and line[-1:] == b"}":
            for etype, prefix in _ECHOES:
                if line.startswith(prefix):
                    obj = self._known(line[len(prefix) : -1])
                    if obj is not None:
                        return WatchEvent(etype, obj)
                    break
        try:
            event = orjson.loads(line)
            etype = event["type"]
            obj = event["object"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise TransportError(f"watch {self._path}: undecodable event: {line[:200]!r}") from e
        if etype == "ERROR":
            raise api_error_from_status(200, obj, method="GET", path=self._path)
        return WatchEvent(etype, obj)


# Asked of ``WatchStream``'s ``known``: object bytes -> the object, or None (decode them).
Known = Callable[[bytes], Object | None]
# How the API server frames the events ``known`` may answer (MODIFIED first: the commoner).
_ECHOES: Final[tuple[tuple[WatchEventType, bytes], ...]] = (
    ("MODIFIED", b'{"type":"MODIFIED","object":'),
    ("ADDED", b'{"type":"ADDED","object":'),
)


def _default(o: Any) -> Any:
    if isinstance(o, Mapping):
        return dict(o)
    if isinstance(o, tuple | set | frozenset):
        return list(o)
    raise TypeError(f"cannot encode {type(o).__name__} as JSON")


def _dumps(body: Mapping[str, Any] | list[Any]) -> bytes:
    """JSON bytes; dict and list subclasses (read-only cache objects) encode natively, and a
    list body (a JSON patch) as a list."""
    return orjson.dumps(body if isinstance(body, dict | list) else dict(body), default=_default)


APPLY_YAML = "application/apply-patch+yaml"


def _dumps_yaml_safe(body: Mapping[str, Any] | list[Any]) -> bytes:
    """JSON for a server-side apply body, which the API server parses as YAML (1.2 JSON is
    YAML, but its decoder is stricter than JSON): raw U+007F-U+009F and U+FFFE/U+FFFF are
    refused, except U+0085 (NEL), which is accepted but folded into a space (a YAML line break:
    the stored value would differ from the applied one forever), and ``\\u`` escapes of
    surrogates (what ``ensure_ascii`` makes of an emoji) are refused. So text stays UTF-8 and
    only U+007F-U+009F and U+FFFE/U+FFFF are escaped, each a single escape outside the
    surrogate range. Measured per code point with a ConfigMap apply against kube-apiserver 1.36
    (U+2028/U+2029, U+FEFF and other spaces round-trip raw)."""
    # orjson first (~5x faster than json.dumps; every apply goes through here): it writes the
    # same bytes as the json.dumps below for JSON values (compact, UTF-8, the same escapes),
    # but for some floats' spelling (0.00002 for 2e-05: the same number). What it would write
    # differently goes the slow way: a YAML-unsafe code point, a ``null`` (orjson writes NaN
    # and Infinity as null, json.dumps as NaN), and anything orjson refuses (non-string keys,
    # integers over 64 bits, lone surrogates), so the result, or the error, is json.dumps's.
    try:
        data = orjson.dumps(
            body,
            default=_default,
            option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME,
        )
    except TypeError:
        data = None
    if data is not None and not _orjson_differs(data):
        return data
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_default)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


# JSON strings may carry these raw; the apiserver's YAML decoder may not (see above).
_YAML_UNSAFE = re.compile("[\u007f-\u009f\ufffe\uffff]")
# The same code points in UTF-8 bytes, or a ``null`` (see ``_dumps_yaml_safe``).
_ORJSON_DIFFERS = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xef\xbf[\xbe\xbf]|null")


def _orjson_differs(data: bytes) -> bool:
    if data.isascii():
        # The usual body: only DEL or a ``null`` can differ, and ``in`` is ~5x faster than the
        # regex (~15 us over a 3 KB StatefulSet, on every apply).
        return b"\x7f" in data or b"null" in data
    return _ORJSON_DIFFERS.search(data) is not None


def _encode_params(params: Params | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _decode_body(raw: bytes, content_type: str) -> Object:
    if not raw:
        return {}
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"body": raw.decode("utf-8", "replace"), "contentType": content_type}
    return decoded if isinstance(decoded, dict) else {"items": decoded}


def _decode_error_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw
