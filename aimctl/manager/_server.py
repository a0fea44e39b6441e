"""The probe server (``/healthz``, ``/readyz``) and the metrics server (``/metrics``), on aiohttp.

Probes follow controller-runtime's healthz package: named checks, 200 "ok" when all pass, 500
(healthz) or 503 (readyz) listing the failures otherwise; ``?verbose`` lists every check and
``?exclude=<name>`` skips one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["Check", "HttpServer", "parse_bind_address", "probe_app", "metrics_app"]

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


def metrics_app(registry: CollectorRegistry) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


class HttpServer:
    """One aiohttp site; ``port`` is the bound port after :meth:`start` (useful with port 0)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._host = host
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port, reuse_address=True)
        await site.start()
        if self._runner.addresses:  # the bound port, when 0 was asked for
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
