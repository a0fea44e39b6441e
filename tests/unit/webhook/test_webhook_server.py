"""The webhook server over real TLS on loopback: routing, errors, metrics by their names."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from aimctl.client import GVK, Object
from aimctl.webhook import (
    LATENCY_BUCKETS,
    AdmissionRequest,
    SelfSignedCerts,
    WebhookBuilder,
    WebhookServer,
    mutate_path,
    validate_path,
)
from tests.unit.webhook.test_webhook_review import UPDATE

KIND = GVK("widgets.example.aimctl.dev", "v2", "Widget")


async def default(req: AdmissionRequest, obj: Object) -> None:
    obj["spec"]["replicas"] = 1


class Server:
    def __init__(self, server: WebhookServer, session: aiohttp.ClientSession) -> None:
        self.server, self.session = server, session

    async def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        async with self.session.post(
            self.server.url(path), data=body, headers={"Content-Type": content_type}
        ) as resp:
            return resp.status, await resp.read()


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Server, CollectorRegistry]]:
    certs = SelfSignedCerts(tmp_path)
    certs.issue()
    server = WebhookServer(host="127.0.0.1", port=0, cert_dir=tmp_path)
    registry = CollectorRegistry()
    server.register_metrics(registry)
    WebhookBuilder(server).for_(KIND).defaulter(default).complete()
    await server.start()
    ctx = ssl.create_default_context(cadata=certs.ca_bundle.decode())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        yield Server(server, session), registry
    await server.stop()


async def test_a_review_is_answered_with_the_patch(
    served: tuple[Server, CollectorRegistry],
) -> None:
    s, registry = served
    status, body = await s.post(mutate_path(KIND), orjson.dumps(UPDATE))
    assert status == 200
    resp = orjson.loads(body)["response"]
    assert resp["uid"] == UPDATE["request"]["uid"] and resp["allowed"] is True
    assert orjson.loads(base64.b64decode(resp["patch"])) == [
        {"op": "add", "path": "/spec/replicas", "value": 1}
    ]
    path = mutate_path(KIND)
    sample = registry.get_sample_value
    assert (
        sample("controller_runtime_webhook_requests_total", {"webhook": path, "code": "200"}) == 1
    )
    assert (
        sample("controller_runtime_webhook_requests_total", {"webhook": path, "code": "500"}) == 0
    )
    assert sample("controller_runtime_webhook_requests_in_flight", {"webhook": path}) == 0
    assert sample("controller_runtime_webhook_latency_seconds_count", {"webhook": path}) == 1
    top = sample(
        "controller_runtime_webhook_latency_seconds_bucket", {"webhook": path, "le": "1000.0"}
    )
    assert top == 1
    assert LATENCY_BUCKETS[0] == 1e-08 and len(LATENCY_BUCKETS) == 12
    assert sample("controller_runtime_webhook_panics_total", {}) == 0
    assert sample("certwatcher_read_certificate_total", {}) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{", "application/json", 400),
        (orjson.dumps({"kind": "AdmissionReview"}), "application/json", 400),
        (orjson.dumps(UPDATE), "text/plain", 400),
        (b" " * (7 * 1024 * 1024 + 10), "application/json", 413),
    ],
)
async def test_a_bad_request_is_an_errored_review(
    served: tuple[Server, CollectorRegistry], body: bytes, content_type: str, code: int
) -> None:
    s, _ = served
    status, raw = await s.post(mutate_path(KIND), body, content_type)
    assert status == 200  # the verdict is inside the review, as controller-runtime answers
    resp = orjson.loads(raw)["response"]
    assert resp["allowed"] is False and resp["status"]["code"] == code


async def test_unknown_paths_are_404(served: tuple[Server, CollectorRegistry]) -> None:
    s, _ = served
    status, _ = await s.post(validate_path(KIND), orjson.dumps(UPDATE))
    assert status == 404


def test_registering_twice_or_after_start_is_refused(tmp_path: Path) -> None:
    server = WebhookServer(cert_dir=tmp_path)
    WebhookBuilder(server).for_(KIND).defaulter(default).complete()
    with pytest.raises(ValueError, match="already registered"):
        WebhookBuilder(server).for_(KIND).defaulter(default).complete()
    with pytest.raises(ValueError, match="nothing to register"):
        WebhookBuilder(server).for_(KIND).complete()
    with pytest.raises(ValueError, match="for_"):
        WebhookBuilder(server).defaulter(default).complete()


def test_paths_are_controller_runtimes() -> None:
    assert mutate_path(KIND) == "/mutate-widgets-example-aimctl-dev-v2-widget"
    assert validate_path(GVK("", "v1", "Pod")) == "/validate--v1-pod"
