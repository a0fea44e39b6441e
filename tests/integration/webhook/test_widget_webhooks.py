"""The webhooks against the real kube-apiserver: defaulting, denial, conversion, rotation."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

import pytest
import yaml
from cryptography import x509
from prometheus_client import CollectorRegistry

from aimctl.client import ApiError, Conflict, Object
from aimctl.webhook import mutate_path
from examples.widgets.api import GROUP, MAX_SURGE_ANNOTATION, V2
from examples.widgets.webhooks import DEFAULTED_LABEL
from tests.integration.webhook.conftest import WidgetEnv, eventually, widget_v1

pytestmark = pytest.mark.integration


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_defaulter_changes_appear_on_created_objects(widgets: WidgetEnv) -> None:
    await widgets.config_map("cfg")
    created = await widgets.rest.request("POST", widgets.path("v1"), body=widget_v1("a", "cfg"))
    # The request was made at v1: the apiserver converted it to v2 for the webhook
    # (matchPolicy Equivalent), applied the patch, and answers at v1.
    assert created["spec"] == {"configMapName": "cfg", "replicas": 1}
    assert created["metadata"]["labels"][DEFAULTED_LABEL] == "true"
    stored = await widgets.rest.request("GET", widgets.path("v2", "a"))
    assert stored["spec"] == {"configMapRef": {"name": "cfg"}, "replicas": 1}
    # An explicit value is kept.
    b = await widgets.rest.request(
        "POST", widgets.path("v1"), body=widget_v1("b", "cfg", replicas=3)
    )
    assert b["spec"]["replicas"] == 3
    registry = widgets.manager.registry
    path = mutate_path(V2)
    assert (
        _sample(registry, "controller_runtime_webhook_requests_total", webhook=path, code="200")
        >= 2
    )
    assert _sample(registry, "controller_runtime_webhook_latency_seconds_count", webhook=path) >= 2
    assert _sample(registry, "controller_runtime_webhook_requests_in_flight", webhook=path) == 0


async def test_validating_denial_reaches_kubectl_with_its_message(widgets: WidgetEnv) -> None:
    manifest = yaml.safe_dump(widget_v1("orphan", "missing"))
    code, _, err = await widgets.kubectl(
        "create", "-n", widgets.namespace, "-f", "-", input=manifest
    )
    assert code != 0
    assert "vwidget-v2.widgets.example.aimctl.dev" in err
    assert 'denied the request: ConfigMap "missing" not found in namespace' in err
    with pytest.raises(ApiError) as caught:
        await widgets.rest.request("GET", widgets.path("v1", "orphan"))
    assert caught.value.status == 404
    # Warnings reach kubectl too, on an allowed request.
    await widgets.config_map("cfg")
    code, _, err = await widgets.kubectl(
        "create",
        "-n",
        widgets.namespace,
        "-f",
        "-",
        input=yaml.safe_dump(widget_v1("big", "cfg", replicas=20)),
    )
    assert code == 0, err
    assert "Warning: 20 replicas is many" in err


async def test_v1_read_as_v2_written_as_v2_read_as_v1_loses_nothing(widgets: WidgetEnv) -> None:
    await widgets.config_map("cfg")
    v1 = widget_v1("w", "cfg", replicas=2)
    v1["metadata"]["labels"] = {"team": "a"}
    v1["metadata"]["annotations"] = {"note": "kept"}
    await widgets.rest.request("POST", widgets.path("v1"), body=v1)

    as_v2 = await widgets.rest.request("GET", widgets.path("v2", "w"))
    assert as_v2["apiVersion"] == f"{GROUP}/v2"
    assert as_v2["spec"] == {"configMapRef": {"name": "cfg"}, "replicas": 2}
    assert as_v2["metadata"]["annotations"] == {"note": "kept"}

    def add_surge(obj: Object) -> None:
        obj["spec"]["maxSurge"] = 4  # a field v1 cannot express

    written = await read_modify_write(widgets, "v2", "w", add_surge)
    assert written["spec"]["maxSurge"] == 4

    as_v1 = await widgets.rest.request("GET", widgets.path("v1", "w"))
    assert as_v1["spec"] == {"configMapName": "cfg", "replicas": 2}
    assert as_v1["metadata"]["labels"]["team"] == "a"
    assert as_v1["metadata"]["annotations"] == {"note": "kept", MAX_SURGE_ANNOTATION: "4"}

    # Written back at v1, the v2-only field survives.
    def relabel(obj: Object) -> None:
        obj["metadata"]["labels"]["team"] = "b"

    await read_modify_write(widgets, "v1", "w", relabel)
    again = await widgets.rest.request("GET", widgets.path("v2", "w"))
    assert again["spec"] == {"configMapRef": {"name": "cfg"}, "replicas": 2, "maxSurge": 4}
    assert again["metadata"]["annotations"] == {"note": "kept"}
    listed = await widgets.rest.request("GET", widgets.path("v1"))
    assert [i["spec"]["configMapName"] for i in listed["items"]] == ["cfg"]


async def read_modify_write(
    env: WidgetEnv, version: str, name: str, change: Callable[[Object], None]
) -> Object:
    """GET at ``version``, change, PUT at ``version``; again on 409 (the controller writes
    status meanwhile)."""
    for _ in range(20):
        obj = await env.rest.request("GET", env.path(version, name))
        change(obj)
        try:
            out: Object = await env.rest.request("PUT", env.path(version, name), body=obj)
        except Conflict:
            continue
        return out
    raise AssertionError("still conflicting after 20 attempts")


def _served_serial(port: int, ca: bytes) -> int:
    ctx = ssl.create_default_context(cadata=ca.decode())

    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_apiserver_calls_through_a_certificate_rotation(widgets: WidgetEnv) -> None:
    await widgets.config_map("cfg")
    failures: list[BaseException] = []
    done = 0
    stop = asyncio.Event()

    async def traffic() -> None:
        nonlocal done
        i = 0
        while not stop.is_set():
            i += 1
            try:
                out = await widgets.rest.request(
                    "POST", widgets.path("v1"), body=widget_v1(f"r{i}", "cfg")
                )
                assert out["spec"]["replicas"] == 1
                done += 1
            except (ApiError, AssertionError) as err:
                failures.append(err)

    def reloaded_after(n: int) -> Callable[[], bool]:
        return lambda: widgets.server.certs.reloads > n

    def answered_after(n: int) -> Callable[[], bool]:
        return lambda: done >= n

    task = asyncio.create_task(traffic())
    port = widgets.server.port
    serials = {await asyncio.to_thread(_served_serial, port, widgets.certs.ca_bundle)}
    for _ in range(3):
        before = widgets.server.certs.reloads
        mark = done
        widgets.certs.issue()
        await eventually(reloaded_after(before))
        # New handshakes get the new certificate...
        serials.add(await asyncio.to_thread(_served_serial, port, widgets.certs.ca_bundle))
        # ...and the apiserver keeps being answered.
        await eventually(answered_after(mark + 3))
    stop.set()
    await task
    assert not failures, failures
    assert len(serials) == 4
    assert _sample(widgets.manager.registry, "certwatcher_read_certificate_total") >= 4
