"""Fixtures: ``redis_server`` (the binary, or a skip / a failure under
``AIMCTL_REQUIRE_INTEGRATION=1``) and ``render_redis`` (a redis-server run from a cache's
rendered StatefulSet and Secret; see ``redis_kit.py``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from aimctl.api.v1alpha1 import AIMKVCache
from aimctl.envtest.pytest_plugin import REQUIRE_ENV
from aimctl.reconcilers.kvcache import _desired as desired
from tests.integration.redis.redis_kit import RenderedRedis, RenderRedis


def _cache(name: str, spec: Mapping[str, Any]) -> tuple[AIMKVCache, dict[str, Any]]:
    raw = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": name, "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": dict(spec),
    }
    return AIMKVCache.model_validate(raw), raw


@pytest.fixture(scope="session")
def redis_server() -> str:
    """Path of redis-server (with redis-cli beside it on PATH)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        message = (
            "redis-server/redis-cli not found on PATH: install them "
            "(Debian/Ubuntu: apt-get install redis-server)"
        )
        if os.environ.get(REQUIRE_ENV, "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} ({REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
        pytest.skip(message)
    return server


@pytest.fixture
def render_redis(redis_server: str, tmp_path: Path) -> Iterator[RenderRedis]:
    """``render_redis(spec, password=None)``: a RenderedRedis for a cache with ``spec`` (not
    started); the password is a new one unless given. Every server is stopped at teardown."""
    started: list[RenderedRedis] = []

    def render(spec: Mapping[str, Any], *, password: str | None = None) -> RenderedRedis:
        name = f"cache{len(started)}"
        cache, raw = _cache(name, spec)
        secret = desired.auth_secret(
            cache, raw, desired.new_password() if password is None else password
        )
        sts = desired.statefulset(cache, raw, auth_hash=desired.password_hash(secret))
        data = tmp_path / name
        data.mkdir()
        server = RenderedRedis(redis_server, cache, sts, secret, data)
        started.append(server)
        return server

    yield render
    for server in started:
        server.stop()
