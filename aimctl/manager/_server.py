"""The probe server (``/healthz``, ``/readyz``) and the metrics server (``/metrics``), on aiohttp.

Probes follow controller-runtime's healthz package: named checks, 200 "ok" when all pass, 500
(healthz) or 503 (readyz) listing the failures otherwise; ``?verbose`` lists every check and
``?exclude=<name>`` skips one.

The metrics server is plain HTTP, or, secure (kubebuilder's scaffold: controller-runtime's
``SecureServing`` with ``filters.WithAuthenticationAndAuthorization``,
kubernetes-sigs/controller-runtime: pkg/metrics/server/server.go), HTTPS with the serving
certificate of ``_certs`` and every request checked by the apiserver (``_metrics_auth``). The
probes stay plain HTTP: the kubelet probes without credentials.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aimctl.manager._certs import ServingCertificate
from aimctl.manager._metrics_auth import MetricsAuth, auth_middleware

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from aimctl.client import RestClient

__all__ = [
    "Check",
    "HttpServer",
    "metrics_app",
    "metrics_server",
    "parse_bind_address",
    "probe_app",
]

Check = Callable[[], str | None]
"""A named check: returns None when healthy, else a short reason."""


def parse_bind_address(addr: str) -> tuple[str, int] | None:
    """``":8080"`` -> ("0.0.0.0", 8080); ``"127.0.0.1:0"``; ``"0"`` or ``""`` -> None (disabled)."""
    if addr in ("", "0"):
        return None
    host, _, port = addr.rpartition(":")
    return (host or "0.0.0.0", int(port))


def _checks_handler(
    checks: dict[str, Check], fail_status: int
) -> Callable[[web.Request], web.Response]:
    async def handler(request: web.Request) -> web.Response:
        excluded = set(request.query.getall("exclude", []))
        verbose = "verbose" in request.query
        lines: list[str] = []
        failed = False
        for name, check in checks.items():
            if name in excluded:
                lines.append(f"[+]{name} excluded: ok")
                continue
            reason = check()
            if reason is None:
                lines.append(f"[+]{name} ok")
            else:
                failed = True
                lines.append(f"[-]{name} failed: {reason}")
        if failed:
            return web.Response(
                status=fail_status,
                text="\n".join([*lines, f"{request.path[1:]} check failed"]) + "\n",
            )
        return web.Response(
            text="\n".join([*lines, f"{request.path[1:]} check passed"]) + "\n" if verbose else "ok"
        )

    return handler  # type: ignore[return-value]


def probe_app(healthz: dict[str, Check], readyz: dict[str, Check]) -> web.Application:
    app = web.Application()
    app.router.add_get("/healthz", _checks_handler(healthz, 500))  # type: ignore[arg-type]
    app.router.add_get("/readyz", _checks_handler(readyz, 503))  # type: ignore[arg-type]
    return app


def metrics_app(registry: CollectorRegistry, *, auth: MetricsAuth | None = None) -> web.Application:
    """``GET /metrics``; with ``auth``, every request (any path) is checked by it first."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(middlewares=[auth_middleware(auth)] if auth is not None else [])
    app.router.add_get("/metrics", metrics)
    return app


class HttpServer:
    """One aiohttp site; ``port`` is the bound port after :meth:`start` (useful with port 0).

    With ``certs`` it serves HTTPS: :meth:`start` loads the certificate first (raising when it
    is unusable) and :meth:`stop` stops watching it.
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        certs: ServingCertificate | None = None,
    ) -> None:
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._host = host
        self.port = port
        self.certs = certs

    @property
    def scheme(self) -> str:
        return "https" if self.certs is not None else "http"

    async def start(self) -> None:
        if self.certs is not None:
            self.certs.start()
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self._host,
            self.port,
            reuse_address=True,
            ssl_context=self.certs.context if self.certs is not None else None,
        )
        await site.start()
        if self._runner.addresses:  # the bound port, when 0 was asked for
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self.certs is not None:
            await self.certs.stop()


def metrics_server(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    secure: bool,
    rest: RestClient,
    cert_dir: str | os.PathLike[str] | None = None,
) -> HttpServer:
    """The metrics server: plain HTTP, or (``secure``) HTTPS with the pair in ``cert_dir``
    (self-signed when None) and every request authenticated and authorized through ``rest``."""
    if not secure:
        return HttpServer(metrics_app(registry), host, port)
    return HttpServer(
        metrics_app(registry, auth=MetricsAuth(rest)),
        host,
        port,
        certs=ServingCertificate(cert_dir),
    )
