"""Secure metrics against the real kube-apiserver: HTTPS, TokenReview and SubjectAccessReview.

ServiceAccount tokens come from the TokenRequest API (``kubectl create token``); the RBAC that
allows reading ``/metrics`` is the ``aimctl-metrics-reader`` ClusterRole the manifests ship,
created here. The manager runs in-process with a controller, so the scrape shows the
controller-runtime families.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from aimctl.client import GVK, ClusterConfig, RestClient, load_kubeconfig
from aimctl.controller import Request
from aimctl.envtest import ControlPlane
from aimctl.envtest._ports import free_ports
from aimctl.manager import Manager
from aimctl.manager._certs import self_signed_pair
from aimctl.manager._metrics_auth import MetricsAuth
from aimctl.webhook._selfsigned import write_atomically

from .manager_kit import FaultyProxy, wait_for

CONFIGMAP = GVK("", "v1", "ConfigMap")
ROOT = Path(__file__).resolve().parents[3]
CRDS = sorted((ROOT / "manifests" / "crds").glob("aim.silogen.ai_*.yaml"))
READER_ROLE = "aimctl-metrics-reader"
# What manifests/rbac ships (engineer "chart"); applied here so the test stands alone.
READER = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": READER_ROLE},
    "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
}


# -- cluster set-up ----------------------------------------------------------------------------


def service_account_token(cp: ControlPlane, namespace: str, name: str) -> str:
    cp.kubectl("create", "serviceaccount", name, "-n", namespace)
    return cp.kubectl("create", "token", name, "-n", namespace).stdout.strip()


@contextlib.contextmanager
def metrics_reader(cp: ControlPlane, namespace: str, sa: str) -> Iterator[None]:
    """Bind ``sa`` to the metrics-reader ClusterRole for the block."""
    cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(READER))
    binding = f"{namespace}-{sa}-metrics"
    cp.kubectl(
        "create",
        "clusterrolebinding",
        binding,
        f"--clusterrole={READER_ROLE}",
        f"--serviceaccount={namespace}:{sa}",
    )
    try:
        yield
    finally:
        cp.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


@contextlib.asynccontextmanager
async def running(mgr: Manager) -> AsyncIterator[str]:
    """Run ``mgr``; yields the metrics URL once it listens."""
    task = asyncio.create_task(mgr.run())
    try:
        await wait_for(
            lambda: (
                task.done() or (mgr.metrics_server is not None and mgr.metrics_server.port != 0)
            ),
            what="the metrics server listens",
        )
        if task.done():
            task.result()
        server = mgr.metrics_server
        assert server is not None
        yield f"{server.scheme}://127.0.0.1:{server.port}/metrics"
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


def secure_manager(config: ClusterConfig, namespace: str, **kw: Any) -> Manager:
    mgr = Manager(
        config,
        namespaces=[namespace],
        metrics_bind_address="127.0.0.1:0",
        metrics_secure=kw.pop("metrics_secure", True),
        health_probe_bind_address="0",
        **kw,
    )

    async def reconcile(_: Request) -> None:
        return None

    mgr.controller().named("metrics-probe").for_(CONFIGMAP).complete(reconcile)
    return mgr


async def scrape(url: str, token: str | None = None, scheme: str = "Bearer") -> tuple[int, str]:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    # The self-signed certificate is not verified here; test_served_certificate checks it.
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as s,
        s.get(url, headers=headers) as resp,
    ):
        return resp.status, await resp.text()


async def served_certificate(port: int) -> x509.Certificate:
    """The certificate a new TLS connection to ``port`` is served."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    return x509.load_der_x509_certificate(der)


# -- the access decisions --------------------------------------------------------------------


async def test_scrapes_need_a_token_the_apiserver_allows_to_get_metrics(
    control_plane: ControlPlane, config: ClusterConfig, namespace: str
) -> None:
    denied = service_account_token(control_plane, namespace, "no-metrics")
    allowed = service_account_token(control_plane, namespace, "scraper")
    mgr = secure_manager(config, namespace)
    with metrics_reader(control_plane, namespace, "scraper"):
        async with running(mgr) as url:
            assert url.startswith("https://")
            status, body = await scrape(url)
            assert status == 401, body
            for garbage in ("not-a-token", allowed[:-8] + "AAAAAAAA"):  # forged signature
                status, body = await scrape(url, garbage)
                assert status == 401, body
            status, body = await scrape(url, allowed, scheme="Basic")
            assert status == 401, body  # only bearer tokens
            status, body = await scrape(url, denied)
            assert status == 403, body
            assert f"system:serviceaccount:{namespace}:no-metrics" in body
            status, body = await scrape(url, allowed)
            assert status == 200, body
            assert "workqueue_adds_total" in body
            assert 'controller_runtime_reconcile_total{controller="metrics-probe"' in body
            # The probe server is not the metrics server: no other path is served unchecked.
            status, _ = await scrape(url.replace("/metrics", "/healthz"))
            assert status == 401


async def test_no_metrics_secure_serves_plain_http_without_auth(
    config: ClusterConfig, namespace: str
) -> None:
    mgr = secure_manager(config, namespace, metrics_secure=False)
    async with running(mgr) as url:
        assert url.startswith("http://")
        status, body = await scrape(url)
        assert status == 200, body
        assert "workqueue_adds_total" in body


# -- the apiserver cannot be asked -------------------------------------------------------------


async def test_a_review_the_operator_may_not_create_is_a_500_not_a_401(
    control_plane: ControlPlane, namespace: str
) -> None:
    """The operator's own account lacks the tokenreviews rule (a broken install): the scraper
    is told the server failed, not that its token is bad."""
    token = service_account_token(control_plane, namespace, "scraper")
    user = control_plane.add_user("operator-without-review-rbac")
    config = await load_kubeconfig(str(user.kubeconfig))
    mgr = Manager(
        config,
        metrics_bind_address="127.0.0.1:0",
        metrics_secure=True,
        health_probe_bind_address="0",
    )
    async with running(mgr) as url:
        status, body = await scrape(url, token)
        assert status == 500, body
        assert token not in body


async def test_an_unreachable_apiserver_is_a_500_and_the_next_scrape_asks_again(
    control_plane: ControlPlane, namespace: str
) -> None:
    token = service_account_token(control_plane, namespace, "scraper")
    proxy = await FaultyProxy.to(control_plane)
    try:
        mgr = Manager(
            await proxy.config(control_plane),
            metrics_bind_address="127.0.0.1:0",
            metrics_secure=True,
            health_probe_bind_address="0",
        )
        with metrics_reader(control_plane, namespace, "scraper"):
            async with running(mgr) as url:
                proxy.resetting = True
                status, body = await scrape(url, token)
                assert status == 500, body
                proxy.resetting = False
                status, body = await scrape(url, token)  # the failure was not cached
                assert status == 200, body
    finally:
        await proxy.close()


# -- caching, against the real reviews -------------------------------------------------------


async def test_answers_are_cached_for_the_ttl_then_asked_again(
    control_plane: ControlPlane, rest: RestClient, namespace: str
) -> None:
    """Within the TTL a removed binding still reads (two reviews for many scrapes); after it,
    the apiserver is asked again and the revocation holds."""
    token = service_account_token(control_plane, namespace, "scraper")
    auth = MetricsAuth(rest, ttl=1.5)
    with metrics_reader(control_plane, namespace, "scraper"):
        assert (await auth.decide(f"Bearer {token}", "/metrics")).status == 200
        assert auth.reviews == 2  # one TokenReview, one SubjectAccessReview
    began = time.monotonic()
    for _ in range(20):
        assert (await auth.decide(f"bearer {token}", "/metrics")).status == 200
    assert auth.reviews == 2
    assert (await auth.decide("Bearer garbage", "/metrics")).status == 401
    assert (await auth.decide("Bearer garbage", "/metrics")).status == 401
    assert auth.reviews == 3  # the refusal is cached too
    await asyncio.sleep(max(0.0, 1.6 - (time.monotonic() - began)))
    assert (await auth.decide(f"Bearer {token}", "/metrics")).status == 403
    assert auth.reviews == 5


# -- the serving certificate -------------------------------------------------------------------


async def test_served_certificate_is_self_signed_for_loopback(
    config: ClusterConfig, namespace: str
) -> None:
    mgr = secure_manager(config, namespace)
    async with running(mgr):
        assert mgr.metrics_server is not None
        cert = await served_certificate(mgr.metrics_server.port)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
        # A scraper that pins the served certificate verifies it for 127.0.0.1.
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        ctx = ssl.create_default_context(cadata=pem)
        _, writer = await asyncio.open_connection("127.0.0.1", mgr.metrics_server.port, ssl=ctx)
        writer.close()


async def test_a_replaced_pair_in_the_cert_dir_is_served_to_new_connections(
    config: ClusterConfig, namespace: str, tmp_path: Path
) -> None:
    first_cert, first_key = self_signed_pair(["localhost", "127.0.0.1"])
    write_atomically(tmp_path / "tls.key", first_key)
    write_atomically(tmp_path / "tls.crt", first_cert)
    first = x509.load_pem_x509_certificate(first_cert).serial_number
    mgr = secure_manager(config, namespace, metrics_cert_dir=tmp_path)
    async with running(mgr):
        assert mgr.metrics_server is not None
        port = mgr.metrics_server.port
        assert (await served_certificate(port)).serial_number == first
        second_cert, second_key = self_signed_pair(["localhost", "127.0.0.1"])
        second = x509.load_pem_x509_certificate(second_cert).serial_number
        write_atomically(tmp_path / "tls.key", second_key)
        write_atomically(tmp_path / "tls.crt", second_cert)
        deadline = time.monotonic() + 30
        while (served := (await served_certificate(port)).serial_number) != second:
            assert served == first
            assert time.monotonic() < deadline, "the new pair was not served"
            await asyncio.sleep(0.2)


# -- aimctl run: the flags -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def operator(
    cp: ControlPlane, namespace: str, tmp: Path, *flags: str, env: dict[str, str] | None = None
) -> AsyncIterator[int]:
    """``aimctl run`` with ``flags`` on free loopback ports; yields the metrics port once the
    operator is ready."""
    await asyncio.to_thread(cp.install_crds, CRDS)
    metrics, probes = free_ports(2)
    log = tmp / "operator.log"
    argv = [
        *(sys.executable, "-m", "aimctl", "run", "--kubeconfig", str(cp.kubeconfig)),
        *("--namespace", namespace, "--log-format", "json"),
        *("--metrics-bind-address", f"127.0.0.1:{metrics}"),
        *("--health-probe-bind-address", f"127.0.0.1:{probes}"),
        *flags,
    ]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as s:
            while True:
                assert proc.returncode is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                with contextlib.suppress(aiohttp.ClientError):
                    async with s.get(f"http://127.0.0.1:{probes}/readyz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_aimctl_run_serves_secure_metrics_with_the_mounted_certificate(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """The default is HTTPS with TokenReview/SubjectAccessReview; --metrics-cert-dir's pair
    is the one served."""
    cert_pem, key_pem = self_signed_pair(["localhost", "127.0.0.1"])
    certs = tmp_path / "certs"
    certs.mkdir()
    write_atomically(certs / "tls.key", key_pem)
    write_atomically(certs / "tls.crt", cert_pem)
    token = service_account_token(control_plane, namespace, "scraper")
    with metrics_reader(control_plane, namespace, "scraper"):
        async with operator(
            control_plane, namespace, tmp_path, "--metrics-cert-dir", str(certs)
        ) as port:
            served = await served_certificate(port)
            assert served.serial_number == x509.load_pem_x509_certificate(cert_pem).serial_number
            url = f"https://127.0.0.1:{port}/metrics"
            assert (await scrape(url))[0] == 401
            status, body = await scrape(url, token)
            assert status == 200, body
            assert 'controller_runtime_reconcile_total{controller="aimkvcache-controller"' in body


async def test_aimctl_run_with_metrics_secure_off_serves_plain_http(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    async with operator(
        control_plane, namespace, tmp_path, env={"AIMCTL_METRICS_SECURE": "false"}
    ) as port:
        status, body = await scrape(f"http://127.0.0.1:{port}/metrics")
        assert status == 200, body
        assert "workqueue_adds_total" in body
