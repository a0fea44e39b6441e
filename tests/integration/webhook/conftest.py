"""The Widget example (examples/widgets) on the session control plane, webhooks on loopback.

The apiserver calls ``https://127.0.0.1:<port>``: the webhook configurations and the CRD's
conversion stanza name that URL and the self-signed CA. Each test gets its own namespace, its
own configurations (named after the namespace and scoped to it with a namespaceSelector) and
its own server and manager; the cluster-scoped CRD is shared and re-pointed at the current
server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from aimctl.client import ApiError, Object, RestClient, load_kubeconfig
from aimctl.envtest import ControlPlane
from aimctl.envtest._ports import free_ports
from aimctl.manager import Manager
from aimctl.webhook import SelfSignedCerts, WebhookServer, conversion_stanza, webhook_configurations
from examples.widgets.api import GROUP, widget_crd
from examples.widgets.setup import setup

ADMISSION = "/apis/admissionregistration.k8s.io/v1"


@dataclass
class WidgetEnv:
    control_plane: ControlPlane
    namespace: str
    rest: RestClient
    server: WebhookServer
    certs: SelfSignedCerts
    manager: Manager

    def path(self, version: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{version}/namespaces/{self.namespace}/widgets"
        return f"{base}/{name}" if name else base

    async def config_map(self, name: str) -> None:
        await self.rest.request(
            "POST",
            f"/api/v1/namespaces/{self.namespace}/configmaps",
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}},
        )

    async def kubectl(self, *args: str, input: str | None = None) -> tuple[int, str, str]:
        # In a thread: the webhook server runs on this event loop and must keep answering.
        done = await asyncio.to_thread(self.control_plane.kubectl, *args, input=input, check=False)
        return done.returncode, done.stdout, done.stderr


def widget_v1(name: str, config_map: str, **spec: object) -> Object:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"configMapName": config_map, **spec},
    }


async def eventually(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll ``predicate`` until it holds (generous: the machine is loaded)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.05)


async def _wait_active(env: WidgetEnv) -> None:
    """Until a server-side dry-run create comes back defaulted (the apiserver has loaded the
    configurations and reaches the server)."""
    await env.config_map("probe")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        try:
            out = await env.rest.request(
                "POST",
                env.path("v2"),
                params={"dryRun": "All"},
                body={
                    **widget_v1("probe", "probe"),
                    "apiVersion": f"{GROUP}/v2",
                    "spec": {"configMapRef": {"name": "probe"}},
                },
            )
            if out["spec"].get("replicas") == 1:
                return
        except ApiError:
            pass
        if loop.time() > deadline:
            raise TimeoutError("the webhooks never became active")
        await asyncio.sleep(0.2)


@pytest_asyncio.fixture
async def widgets(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> AsyncIterator[WidgetEnv]:
    port = free_ports(1)[0]
    certs = SelfSignedCerts(tmp_path / "certs")
    certs.issue()
    base = f"https://127.0.0.1:{port}"
    crd = widget_crd(conversion_stanza(url=base, ca_bundle=certs.ca_bundle))
    await asyncio.to_thread(control_plane.install_crds, [crd])
    server = WebhookServer(
        host="127.0.0.1", port=port, cert_dir=certs.cert_dir, cert_poll_interval=0.1
    )
    manager = Manager(
        await load_kubeconfig(str(control_plane.kubeconfig)),
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="0",
        graceful_shutdown_timeout=5,
        webhook_server=server,
    )
    setup(manager)
    run = asyncio.create_task(manager.run())
    rest = await RestClient.from_kubeconfig(str(control_plane.kubeconfig))
    env = WidgetEnv(control_plane, namespace, rest, server, certs, manager)
    configs = webhook_configurations(
        f"widgets-{namespace}", server.registrations, url=base, ca_bundle=certs.ca_bundle
    )
    try:
        for config in configs:
            for hook in config["webhooks"]:
                hook["namespaceSelector"] = {
                    "matchLabels": {"kubernetes.io/metadata.name": namespace}
                }
            plural = config["kind"].lower() + "s"
            await rest.request("POST", f"{ADMISSION}/{plural}", body=config)
        await _wait_active(env)
        yield env
    finally:
        for config in configs:
            plural = config["kind"].lower() + "s"
            with contextlib.suppress(ApiError):
                await rest.request("DELETE", f"{ADMISSION}/{plural}/{config['metadata']['name']}")
        # Stored Widgets are deleted while the server is up (a later test's install lists
        # every version, which must not need a conversion webhook that is gone).
        with contextlib.suppress(ApiError):
            await rest.request("DELETE", env.path("v2"))
        manager.stop()
        await asyncio.wait_for(run, 30)
        await rest.aclose()
