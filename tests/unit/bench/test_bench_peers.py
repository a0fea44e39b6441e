"""The converge benchmark's peers make aimctl's writes for a new cache: the same bodies (built by
aimctl's own builders) and, for the ceiling, the same eight writes in the reconciler's order,
seen at the HTTP transport of a local server."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from aimctl.api.v1alpha1 import AIMKVCache
from aimctl.reconcilers.kvcache import _desired as desired
from bench.peers import ceiling
from bench.peers._kvcache import API_VERSION, desired_state

NS = "ns"


def _cache(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "AIMKVCache",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "generation": 1,
        },
        "spec": {},
    }


def test_desired_state_is_aimctls_secret_and_statefulset_for_its_password() -> None:
    raw = _cache("c")
    want = desired_state(raw)
    cache = AIMKVCache.model_validate(raw)
    password = base64.b64decode(want.secret["data"][desired.AUTH_SECRET_KEY]).decode()
    assert want.secret == desired.auth_secret(cache, raw, password)
    assert want.statefulset == desired.statefulset(
        cache, raw, auth_hash=desired.password_hash(want.secret)
    )
    assert want.statefulset["spec"]["podManagementPolicy"] == "Parallel"


def test_desired_state_keeps_an_existing_passwords_hash() -> None:
    raw = _cache("c")
    want = desired_state(raw, auth_hash="0123456789abcdef")
    template = want.statefulset["spec"]["template"]["metadata"]
    assert template["annotations"] == {desired.AUTH_HASH_ANNOTATION: "0123456789abcdef"}


async def test_ceiling_makes_the_reconcilers_eight_writes_per_cache_in_its_order(
    tmp_path: Path,
) -> None:
    names = ["a", "b"]
    seen: list[tuple[str, str, str, dict[str, Any]]] = []

    async def handle(request: web.Request) -> web.Response:
        if request.method == "GET" and request.path == "/version":
            return web.json_response({})
        if request.method == "GET":
            return web.json_response({"items": [_cache(n) for n in names]})
        body = await request.json()
        seen.append((request.method, request.path, request.content_type, body))
        return web.json_response(body, status=201 if request.method == "POST" else 200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    try:
        assert await ceiling.run(str(kubeconfig), NS, 4, None) == 0
    finally:
        await runner.cleanup()

    for name in names:
        mine = [s for s in seen if _about(s, name)]
        kinds = [_kind(method, path, ctype, body) for method, path, ctype, body in mine]
        assert Counter(kinds) == Counter(
            {
                "finalizer": 1,
                "Secret": 1,
                "Event PasswordCreated": 1,
                "NetworkPolicy": 1,
                "StatefulSet": 1,
                "Service": 1,
                "status": 1,
                "Event KVCacheProgressing": 1,
            }
        )
        # The Events are posted in the background; the rest in the reconciler's order.
        in_line = [k for k in kinds if not k.startswith("Event")]
        assert in_line == [
            "finalizer",
            "Secret",
            "NetworkPolicy",
            "StatefulSet",
            "Service",
            "status",
        ]
        secret = next(b for _, _, _, b in mine if b.get("kind") == "Secret")
        sts = next(b for _, _, _, b in mine if b.get("kind") == "StatefulSet")
        annotations = sts["spec"]["template"]["metadata"]["annotations"]
        assert annotations[desired.AUTH_HASH_ANNOTATION] == desired.password_hash(secret)
        assert secret["metadata"]["name"] == desired.auth_secret_name(name)


def _about(seen: tuple[str, str, str, dict[str, Any]], cache: str) -> bool:
    _, path, _, body = seen
    if body.get("kind") == "Event":
        return bool(body["regarding"]["name"] == cache)
    if path.endswith("/secrets"):
        return bool(body["metadata"]["name"] == desired.auth_secret_name(cache))
    # .../aimkvcaches/<cache>[/status] or .../<kind>/<child name>
    parts = path.split("/")
    own = {
        cache,
        desired.statefulset_name(cache),
        desired.service_name(cache),
        desired.network_policy_name(cache),
    }
    return bool(own & set(parts[-2:]))


def _kind(method: str, path: str, content_type: str, body: dict[str, Any]) -> str:
    if body.get("kind") == "Event":
        return f"Event {body['reason']}"
    if path.endswith("/status"):
        return "status"
    if content_type == "application/merge-patch+json":
        return "finalizer"
    assert method == "POST" or content_type == "application/apply-patch+yaml", (method, path)
    return str(body["kind"])
