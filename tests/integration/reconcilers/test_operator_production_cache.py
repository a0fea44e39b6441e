"""Issue 15's acceptance on the full local cluster, read from what the cluster runs: a cache with
``limits.memory: 2Gi`` gets a memory bound below 2Gi with an ``allkeys-*`` policy, a Redis that
requires the password of its own Secret, the patched default image, and pods (Redis and the
consuming inference pods) with no service-account token; no ConfigMap holds the password.

What redis-server does with these arguments is tested on a real one in tests/integration/redis/.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aimctl.api import quantity
from aimctl.reconcilers.kvcache import _desired as desired

from .operator_kit import Operator

CACHE = "prod-cache"
SERVICE = "prod-chat"


def manifests(namespace: str) -> str:
    cache = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": CACHE, "namespace": namespace},
        "spec": {
            "resources": {
                "requests": {"cpu": "100m", "memory": "2Gi"},
                "limits": {"memory": "2Gi"},
            },
            "metrics": {"enabled": True},
        },
    }
    service = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMService",
        "metadata": {"name": SERVICE, "namespace": namespace},
        "spec": {
            "model": {"image": "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"},
            "kvCache": {"name": CACHE},
        },
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [cache, service]})


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


async def test_a_2gi_cache_bounds_memory_requires_its_password_and_mounts_no_token(
    operator: Operator,
) -> None:
    op = operator
    await op.k("apply", "-n", op.namespace, "-f", "-", input=manifests(op.namespace))
    await op.wait_status("aimkvcache", CACHE, "Ready", within=120)
    await op.wait_status("aimservice", SERVICE, "Running", within=120)

    # The pod the StatefulSet controller made (not only the template we wrote).
    redis_pod = await op.get("pod", f"{CACHE}-statefulset-0")
    assert redis_pod is not None
    spec = redis_pod["spec"]
    redis = next(c for c in spec["containers"] if c["name"] == "redis")
    args: list[str] = redis["args"]
    maxmemory = int(arg(args, "--maxmemory"))
    assert 0 < maxmemory < quantity.parse_quantity("2Gi")
    assert maxmemory == 1610612736  # 75% with the default RDB persistence
    assert arg(args, "--maxmemory-policy").startswith("allkeys-")
    assert arg(args, "--requirepass") == "$(REDIS_PASSWORD)"
    env = {e["name"]: e for e in redis["env"]}
    secret_ref = {"secretKeyRef": {"name": f"{CACHE}-auth", "key": "password"}}
    assert env["REDIS_PASSWORD"]["valueFrom"] == secret_ref
    assert env["REDISCLI_AUTH"]["valueFrom"] == secret_ref
    assert redis["image"] == desired.DEFAULT_IMAGE == "docker.io/library/redis:7.2.12"
    assert redis["securityContext"]["readOnlyRootFilesystem"] is True
    assert "sh" not in json.dumps(redis["readinessProbe"]).split('"')
    assert spec["automountServiceAccountToken"] is False
    # No token volume was injected into any container of either kind of pod.
    pods = json.loads(await op.k("get", "pods", "-n", op.namespace, "-o", "json"))["items"]
    inference = [p for p in pods if p["metadata"]["name"].startswith(f"{SERVICE}-")]
    assert inference, "the inference pod"
    for pod in [redis_pod, *inference]:
        mounts = [m for c in pod["spec"]["containers"] for m in c.get("volumeMounts") or ()]
        assert not any("serviceaccount" in m["mountPath"] for m in mounts), pod["metadata"]["name"]
        assert pod["spec"]["automountServiceAccountToken"] is False
    consumer_env = {e["name"]: e for e in inference[0]["spec"]["containers"][0]["env"]}
    assert consumer_env["AIM_KVCACHE_PASSWORD"]["valueFrom"] == secret_ref

    secret = await op.get("secret", f"{CACHE}-auth")
    assert secret is not None
    password = base64.b64decode(secret["data"]["password"]).decode()
    configmaps: dict[str, Any] = json.loads(
        await op.k("get", "configmaps", "-n", op.namespace, "-o", "json")
    )
    assert password not in json.dumps(configmaps)
    assert password not in json.dumps(pods)
