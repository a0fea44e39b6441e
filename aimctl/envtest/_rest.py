"""A minimal synchronous JSON client for the control plane's own set-up calls.

Owns: health probes, and the few admin requests the harness makes (namespaces, CRDs, the kwok
node, the StorageClass). It is deliberately tiny and blocking, so fixtures work under any event
loop; the library's real client lives in :mod:`aimctl.client`.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ApiError", "SyncClient", "http_get_ok"]


class ApiError(RuntimeError):
    """A non-2xx answer; ``status`` is the HTTP code and ``body`` the decoded Status (or text)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status
        self.body = body


def http_get_ok(host: str, port: int, path: str, *, timeout: float = 2.0) -> bool:
    """A plain-HTTP GET answered 200 (etcd's ``/health``)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    finally:
        conn.close()


class SyncClient:
    """HTTPS JSON requests with a client certificate (or, with ``verify=False``, none)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self._timeout = timeout
        if ca_file is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=str(ca_file))
        if cert_file is not None:
            ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        self._ctx = ctx

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON (or text) body.

        Raises:
            ApiError: the server answered with a status outside 2xx.
            OSError: the connection failed.
        """
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        conn = http.client.HTTPSConnection(
            self.host, self.port, context=self._ctx, timeout=timeout or self._timeout
        )
        try:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            decoded: Any = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode("utf-8", "replace")
        if not 200 <= resp.status < 300:
            raise ApiError(method, path, resp.status, decoded)
        return decoded

    def ok(self, path: str) -> bool:
        """GET ``path`` answered 2xx (health endpoints)."""
        try:
            self.request("GET", path, timeout=2.0)
        except ApiError:
            return False
        return True

    def create(self, path: str, body: Mapping[str, Any], *, exist_ok: bool = False) -> Any:
        """POST ``body`` to a collection path; with ``exist_ok`` a 409 is not an error."""
        try:
            return self.request("POST", path, dict(body))
        except ApiError as e:
            if exist_ok and e.status == 409:
                return None
            raise
