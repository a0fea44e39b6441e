"""The metrics serving certificate: self-signed in memory, or a mounted pair re-read when it
changes (a real TLS server on loopback, a real client)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509

from aimctl.client import load_kubeconfig
from aimctl.manager import Manager
from aimctl.manager._certs import ServingCertificate, self_signed_pair
from aimctl.manager._server import HttpServer
from aimctl.webhook._selfsigned import write_atomically


def test_self_signed_pair_names_the_hosts_and_is_valid_now() -> None:
    cert_pem, key_pem = self_signed_pair(["localhost", "127.0.0.1", "::1"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.issuer == cert.subject
    assert b"PRIVATE KEY" in key_pem


@contextlib.asynccontextmanager
async def serving(certs: ServingCertificate) -> AsyncIterator[int]:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    server = HttpServer(app, "127.0.0.1", 0, certs=certs)
    await server.start()
    try:
        assert server.scheme == "https"
        yield server.port
    finally:
        await server.stop()


async def peer_certificate(port: int, ctx: ssl.SSLContext | None = None) -> x509.Certificate:
    if ctx is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


async def test_without_a_directory_a_self_signed_certificate_is_served() -> None:
    certs = ServingCertificate()
    async with serving(certs) as port:
        cert = await peer_certificate(port)
        assert cert.issuer == cert.subject
        assert certs.reloads == 0


async def test_a_mounted_pair_is_served_and_a_replaced_one_reloaded(tmp_path: Path) -> None:
    pairs = [self_signed_pair(["127.0.0.1"]) for _ in range(2)]
    serials = [x509.load_pem_x509_certificate(c).serial_number for c, _ in pairs]
    write_atomically(tmp_path / "tls.key", pairs[0][1])
    write_atomically(tmp_path / "tls.crt", pairs[0][0])
    certs = ServingCertificate(tmp_path, poll_interval=0.05)
    async with serving(certs) as port:
        trusting_first = ssl.create_default_context(cadata=pairs[0][0].decode())
        assert (await peer_certificate(port, trusting_first)).serial_number == serials[0]
        # A half-written rotation (new certificate, old key) keeps the old pair served.
        write_atomically(tmp_path / "tls.crt", pairs[1][0])
        await asyncio.sleep(0.3)
        assert (await peer_certificate(port)).serial_number == serials[0]
        write_atomically(tmp_path / "tls.key", pairs[1][1])
        deadline = time.monotonic() + 10
        while (await peer_certificate(port)).serial_number != serials[1]:
            assert time.monotonic() < deadline, "the rotated pair was not served"
            await asyncio.sleep(0.05)
        assert certs.reloads == 2


async def test_a_directory_without_the_pair_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ServingCertificate(tmp_path).start()


async def test_a_mismatched_pair_fails_the_start(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_bytes(self_signed_pair(["127.0.0.1"])[0])
    (tmp_path / "tls.key").write_bytes(self_signed_pair(["127.0.0.1"])[1])
    with pytest.raises(ssl.SSLError):
        ServingCertificate(tmp_path).start()


async def test_a_cert_dir_for_plain_http_is_refused(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    config = await load_kubeconfig(str(kubeconfig))
    with pytest.raises(ValueError, match="metrics_secure"):
        Manager(config, metrics_cert_dir=tmp_path)
