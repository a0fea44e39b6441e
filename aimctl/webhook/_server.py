"""The webhook server: HTTPS on aiohttp, one path per webhook, instrumented.

controller-runtime's ``webhook.Server`` (kubernetes-sigs/controller-runtime:
pkg/webhook/server.go): default port 9443, certificates ``tls.crt``/``tls.key`` in
``<tmp>/k8s-webhook-server/serving-certs`` (a mounted Secret in a cluster), hot-reloaded by
the certificate watcher; every path is wrapped in the webhook metrics (``_metrics``). Paths are
registered before :meth:`WebhookServer.start`.

Admission requests are answered with HTTP 200 and the verdict inside the AdmissionReview, also
for malformed requests (``Errored(400)`` in the review, as controller-runtime's http.go does);
bodies over 7 MiB are refused with ``Errored(413)``. A malformed ConversionReview gets an HTTP
400, as controller-runtime's conversion handler answers.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from aimctl.webhook._admission import AdmissionHandler
from aimctl.webhook._certwatcher import CertWatcher
from aimctl.webhook._conversion import HubSpoke, convert_review
from aimctl.webhook._metrics import WebhookMetrics

if TYPE_CHECKING:
    from aimctl.webhook._builder import WebhookRegistration
from aimctl.webhook._review import errored, parse_admission_review, render_admission_review

__all__ = ["CONVERSION_PATH", "DEFAULT_CERT_DIR", "MAX_REQUEST_SIZE", "WebhookServer"]

DEFAULT_CERT_DIR = Path(tempfile.gettempdir()) / "k8s-webhook-server" / "serving-certs"
MAX_REQUEST_SIZE = 7 * 1024 * 1024  # controller-runtime's admission/http.go maxRequestSize
CONVERSION_PATH = "/convert"

_Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body, or None when it is over :data:`MAX_REQUEST_SIZE` (``read(n)`` returns
    what has arrived, up to n: one read is not the body)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1 << 16):
        size += len(chunk)
        if size > MAX_REQUEST_SIZE:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class WebhookServer:
    """Serves admission and conversion webhooks over TLS.

    Options (keyword-only): ``host`` (default all interfaces), ``port`` (9443; 0 picks a free
    one, read :attr:`port` after :meth:`start`), ``cert_dir``, ``cert_name``, ``key_name``
    (the pair, re-read when it changes, see ``_certwatcher``), ``cert_poll_interval`` (10 s).
    """

    def __init__(
        self,
        *,
        host: str = "",
        port: int = 9443,
        cert_dir: Path | str = DEFAULT_CERT_DIR,
        cert_name: str = "tls.crt",
        key_name: str = "tls.key",
        cert_poll_interval: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.cert_dir = Path(cert_dir)
        self.metrics = WebhookMetrics()
        self.certs = CertWatcher(
            self.cert_dir / cert_name,
            self.cert_dir / key_name,
            interval=cert_poll_interval,
            reads=self.metrics.cert_reads,
            read_errors=self.metrics.cert_read_errors,
        )
        self._routes: dict[str, _Route] = {}
        self._converters: dict[tuple[str, str], HubSpoke] = {}  # type: ignore[type-arg]
        self._runner: web.AppRunner | None = None
        self.started = False
        # What the builder registered, per kind (for the webhook configurations).
        self.registrations: list[WebhookRegistration] = []

    # -- registration ------------------------------------------------------------------------

    @property
    def paths(self) -> list[str]:
        return sorted(self._routes)

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self.metrics.register(registry)

    def register(self, path: str, route: _Route) -> None:
        """Serve ``route`` at ``path`` (POST), instrumented with the webhook metrics."""
        if self.started:
            raise RuntimeError("webhooks must be registered before the server starts")
        if path in self._routes:
            raise ValueError(f"a webhook is already registered at {path}")
        self.metrics.watch(path)
        self._routes[path] = self._instrumented(path, route)

    def register_admission(self, path: str, handler: AdmissionHandler) -> None:
        """Serve an admission handler at ``path``."""

        async def route(request: web.Request) -> web.StreamResponse:
            body = await _read_body(request)
            uid = ""
            if body is None:
                verdict = errored(413, f"request entity is too large; limit is {MAX_REQUEST_SIZE}")
            elif request.content_type != "application/json":
                verdict = errored(400, f"contentType={request.content_type}, expected JSON")
            else:
                try:
                    req = parse_admission_review(orjson.loads(body))
                except (ValueError, orjson.JSONDecodeError) as err:
                    verdict = errored(400, str(err))
                else:
                    uid = req.uid
                    verdict = await handler.handle(req)
            return _json(render_admission_review(uid, verdict))

        self.register(path, route)

    def register_conversion(self, converter: HubSpoke) -> None:  # type: ignore[type-arg]
        """Convert ``converter``'s kind at :data:`CONVERSION_PATH` (one path for all kinds)."""
        key = (converter.group, converter.kind)
        if key in self._converters:
            raise ValueError(f"a conversion is already registered for {key}")
        self._converters[key] = converter
        if CONVERSION_PATH in self._routes:
            return
        panics = self.metrics.conversion_panics

        async def route(request: web.Request) -> web.StreamResponse:
            try:
                body = await _read_body(request)
                if body is None:
                    return web.Response(status=413, text="request entity is too large")
                review = orjson.loads(body)
                return _json(convert_review(review, self._converters, panics=panics))
            except (ValueError, orjson.JSONDecodeError) as err:
                return web.Response(status=400, text=str(err))

        self.register(CONVERSION_PATH, route)

    def _instrumented(self, path: str, route: _Route) -> _Route:
        latency = self.metrics.latency.labels(path)
        in_flight = self.metrics.in_flight.labels(path)
        requests = self.metrics.requests

        async def handler(request: web.Request) -> web.StreamResponse:
            start = time.perf_counter()
            in_flight.inc()
            code = 500
            try:
                response = await route(request)
                code = response.status
                return response
            finally:
                in_flight.dec()
                latency.observe(time.perf_counter() - start)
                requests.labels(path, str(code)).inc()

        return handler

    # -- lifecycle ---------------------------------------------------------------------------

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """``https://<host>:<port><path>``, for webhook configurations that name a URL."""
        return f"https://{host}:{self.port}{path}"

    async def start(self) -> None:
        """Load the certificate (raises when it is missing or broken), then listen."""
        self.certs.start()
        app = web.Application(client_max_size=MAX_REQUEST_SIZE + 1)
        for path, route in self._routes.items():
            app.router.add_post(path, route)
        self._runner = runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(
            runner,
            self.host or None,
            self.port,
            ssl_context=self.certs.context,
            reuse_address=True,
        )
        await site.start()
        if runner.addresses:
            self.port = int(runner.addresses[0][1])
        self.started = True

    async def stop(self) -> None:
        await self.certs.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
