"""A cache's consumers on the full local cluster: the password reaches the inference pods only by
``secretKeyRef`` (no object the operator writes holds it), LMCache's URL comes after the
variable it expands, and a new password (the Secret deleted) rolls the consumers once."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from aimctl.reconcilers.kvcache._desired import AUTH_HASH_ANNOTATION

from .operator_kit import Operator

CACHE = "kvcache-llama-chat"
SECRET = f"{CACHE}-auth"


async def password(op: Operator) -> str:
    async def secret() -> dict[str, Any] | None:
        return await op.get("secret", SECRET)

    found = await op.wait("the cache's Secret", secret)
    return base64.b64decode(found["data"]["password"]).decode()


def env_of(deploy: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def auth_hash(deploy: dict[str, Any]) -> str | None:
    annotations = deploy["spec"]["template"]["metadata"].get("annotations") or {}
    value = annotations.get(AUTH_HASH_ANNOTATION)
    return value if isinstance(value, str) else None


async def test_consumers_get_the_password_by_reference_and_nothing_else_holds_it(
    operator: Operator,
) -> None:
    op = operator
    await op.apply_sample("quick-start.yaml")
    await op.wait_status("aimservice", "llama-chat", "Running", within=120)
    secret_password = await password(op)
    assert len(secret_password) == 64

    deploy = await op.get("deployment", "llama-chat")
    assert deploy is not None
    env = env_of(deploy)
    names = [e["name"] for e in env]
    by = {e["name"]: e for e in env}
    assert by["AIM_KVCACHE_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": SECRET, "key": "password"}
    }
    assert by["LMCACHE_REMOTE_URL"]["value"] == (
        f"redis://:$(AIM_KVCACHE_PASSWORD)@{CACHE}-svc:6379"
    )
    assert names.index("AIM_KVCACHE_PASSWORD") < names.index("LMCACHE_REMOTE_URL")
    expected = hashlib.sha256(secret_password.encode()).hexdigest()[:16]
    assert auth_hash(deploy) == expected

    # The pod the ReplicaSet made has the same order (the kubelet expands from earlier entries).
    pods = json.loads(
        await op.k(
            "get",
            "pods",
            "-n",
            op.namespace,
            "-l",
            "app.kubernetes.io/instance=llama-chat",
            "-o",
            "json",
        )
    )["items"]
    assert pods
    pod_names = [e["name"] for e in pods[0]["spec"]["containers"][0]["env"]]
    assert pod_names.index("AIM_KVCACHE_PASSWORD") < pod_names.index("LMCACHE_REMOTE_URL")

    # No object the operators write, and no Event, holds the password.
    written = [
        ("deployment", "llama-chat"),
        ("configmap", "llama-chat-lmcache"),
        ("aimservice", "llama-chat"),
        ("aimkvcache", CACHE),
        ("statefulset", f"{CACHE}-statefulset"),
    ]
    for kind, name in written:
        obj = await op.get(kind, name)
        assert obj is not None, (kind, name)
        assert secret_password not in json.dumps(obj), f"{kind}/{name} holds the password"
    config = await op.get("configmap", "llama-chat-lmcache")
    assert config is not None
    assert f"redis://{CACHE}-svc:6379" in config["data"]["lmcache_config.yaml"]
    events = await op.k("get", "events", "-n", op.namespace, "-o", "json")
    assert secret_password not in events


async def test_deleting_the_secret_rolls_the_consumers_once_to_the_new_password(
    operator: Operator,
) -> None:
    op = operator
    await op.apply_sample("quick-start.yaml")
    await op.wait_status("aimservice", "llama-chat", "Running", within=120)
    old_password = await password(op)
    deploy = await op.get("deployment", "llama-chat")
    assert deploy is not None
    old_hash = auth_hash(deploy)
    assert old_hash is not None

    await op.k("delete", "secret", SECRET, "-n", op.namespace)

    async def rolled() -> dict[str, Any] | None:
        d = await op.get("deployment", "llama-chat")
        return d if d is not None and auth_hash(d) not in (None, old_hash) else None

    deploy = await op.wait("the consumers' new auth-hash", rolled, within=90)
    new_password = await password(op)
    assert new_password != old_password
    assert auth_hash(deploy) == hashlib.sha256(new_password.encode()).hexdigest()[:16]
    await op.wait_status("aimservice", "llama-chat", "Running", within=120)
    # One roll: the template never lost the annotation in between (which would have made a
    # third ReplicaSet).
    rs = json.loads(
        await op.k(
            "get",
            "rs",
            "-n",
            op.namespace,
            "-l",
            "app.kubernetes.io/instance=llama-chat",
            "-o",
            "json",
        )
    )["items"]
    assert len(rs) == 2, [r["metadata"]["name"] for r in rs]
