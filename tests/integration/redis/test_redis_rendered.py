"""A real redis-server, started from exactly what the operator renders for a cache, evicts
instead of growing, refuses clients without the password, keeps keys across a restart where
persistence is on, answers the rendered probes, and accepts every rendered option."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from aimctl.api.v1alpha1 import MaxMemoryPolicy, Persistence
from aimctl.reconcilers.kvcache import _redis
from tests.integration.redis.redis_kit import (
    RedisStartError,
    RenderRedis,
    RespError,
    expand_kubelet_vars,
)

# Small enough to fill in a second: maxmemory 48Mi (RDB, 75%).
SMALL = {"resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}}
KIB, MIB = 1 << 10, 1 << 20


def chunks(seed: int, total: int) -> list[bytes]:
    """Random values of LMCache KV-chunk sizes (256 KiB to 2 MiB) adding up to ``total``."""
    rng = random.Random(seed)
    out: list[bytes] = []
    while sum(map(len, out)) < total:
        out.append(rng.randbytes(rng.randint(256 * KIB, 2 * MIB)))
    return out


# --- the kubelet rule the fixture relies on --------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expanded"),
    [
        ("$(P)", "pw"),
        ("a$(P)b$(P)", "apwbpw"),
        ("$(UNSET)", "$(UNSET)"),
        ("$$(P)", "$(P)"),
        ("$$$(P)", "$pw"),
        ("$P", "$P"),
        ("$(P", "$(P"),
        ("cost$", "cost$"),
        ("", ""),
    ],
)
def test_expand_kubelet_vars_follows_the_kubelet(arg: str, expanded: str) -> None:
    assert expand_kubelet_vars([arg], {"P": "pw"}) == [expanded]


# --- (a) memory bound and eviction -----------------------------------------------------------


def test_filling_past_maxmemory_evicts_instead_of_growing(render_redis: RenderRedis) -> None:
    redis = render_redis(SMALL)
    maxmemory = _redis.maxmemory_bytes(redis.cache)
    assert maxmemory == 48 * MIB
    redis.start()
    values = chunks(1, 3 * maxmemory)
    peak = 0
    with redis.client() as c:
        assert c.call("CONFIG", "GET", "maxmemory") == [b"maxmemory", str(maxmemory).encode()]
        for i, value in enumerate(values):
            assert c.call("SET", f"kv:{i}", value) == "OK"  # never an OOM error
            peak = max(peak, int(c.info("memory")["used_memory"]))
        stats = c.info("stats")
        keys = c.call("DBSIZE")
        # The newest chunk is still there: allkeys-lru evicts the least recently used.
        assert c.call("GET", f"kv:{len(values) - 1}") == values[-1]
    assert int(stats["evicted_keys"]) > 0
    assert keys < len(values)
    # Redis evicts before it runs a command, so one value may overshoot until the next one.
    assert peak <= maxmemory + 2 * MIB + MIB, (peak, maxmemory)
    assert redis.proc is not None and redis.proc.poll() is None


def test_noeviction_refuses_writes_when_full(render_redis: RenderRedis) -> None:
    # The contrast: the same bound with the one policy that does not evict.
    redis = render_redis({**SMALL, "redis": {"maxMemoryPolicy": "noeviction"}})
    redis.start()
    refused: list[str] = []
    with redis.client() as c:
        for i, value in enumerate(chunks(2, 3 * _redis.maxmemory_bytes(redis.cache))):
            try:
                c.call("SET", f"kv:{i}", value)
            except RespError as e:
                refused.append(str(e))
        assert int(c.info("stats")["evicted_keys"]) == 0
    assert refused and all(r.startswith("OOM") for r in refused), refused[:3]


# --- (b) authentication ----------------------------------------------------------------------


def test_clients_without_the_password_are_refused(render_redis: RenderRedis) -> None:
    redis = render_redis(SMALL)
    redis.start()
    with redis.client(authenticate=False) as c:
        for command in (("PING",), ("GET", "k"), ("SET", "k", "v"), ("CONFIG", "GET", "*")):
            with pytest.raises(RespError, match=r"^NOAUTH"):
                c.call(*command)
        with pytest.raises(RespError, match=r"^WRONGPASS"):
            c.call("AUTH", "not-the-password")
        # The password from the rendered Secret is the one Redis requires.
        assert c.call("AUTH", redis.password) == "OK"
        assert c.call("SET", "k", "v") == "OK"
        assert c.call("GET", "k") == b"v"


def test_an_empty_password_fails_closed(render_redis: RenderRedis) -> None:
    # An edited Secret with an empty value makes `requirepass ""`: no password. Protected mode
    # (rendered on) then refuses every non-loopback client. 127.0.0.2 is not loopback to Redis
    # (it compares the peer address with 127.0.0.1 and ::1), and needs no network interface.
    redis = render_redis(SMALL, password="")
    redis.start()
    with redis.client(source="127.0.0.2") as c, pytest.raises(RespError, match=r"^DENIED"):
        c.call("PING")
    with redis.client() as c:
        assert c.call("PING") == "PONG"  # the probes, inside the pod, still work


# --- (c) persistence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persistence", "kept"),
    [(None, True), (Persistence.RDB, True), (Persistence.AOF, True), (Persistence.NONE, False)],
)
def test_restart_keeps_keys_only_where_persistence_is_on(
    render_redis: RenderRedis, persistence: Persistence | None, kept: bool
) -> None:
    spec: dict[str, Any] = dict(SMALL)
    if persistence is not None:
        spec["redis"] = {"persistence": str(persistence)}
    redis = render_redis(spec)
    redis.start()
    values = chunks(3, 4 * MIB)
    with redis.client() as c:
        for i, value in enumerate(values):
            c.call("SET", f"kv:{i}", value)
    redis.restart()  # SIGTERM, as the kubelet stops a pod; then the same command line
    with redis.client() as c:
        got = [c.call("GET", f"kv:{i}") for i in range(len(values))]
    assert got == (values if kept else [None] * len(values))
    files = {p.name for p in Path(redis.data_dir).iterdir()}
    mode = persistence or Persistence.RDB
    assert ("dump.rdb" in files) == (mode is Persistence.RDB)
    assert ("appendonlydir" in files) == (mode is Persistence.AOF)


# --- (d) probes ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["readinessProbe", "startupProbe"])
def test_rendered_probe_passes_with_the_pods_env(render_redis: RenderRedis, kind: str) -> None:
    redis = render_redis(SMALL)
    redis.start()
    done = redis.probe(kind)
    assert done.returncode == 0, done
    assert done.stdout.strip() == "PONG"


@pytest.mark.parametrize(
    "env", [{"REDISCLI_AUTH": "wrong"}, {}], ids=["wrong-password", "no-password"]
)
def test_rendered_probe_fails_without_the_right_password(
    render_redis: RenderRedis, env: dict[str, str]
) -> None:
    redis = render_redis(SMALL)
    redis.start()
    done = redis.probe("readinessProbe", env)
    assert done.returncode != 0, done
    assert "NOAUTH" in done.stdout + done.stderr


def test_probe_is_not_ready_while_the_snapshot_loads(render_redis: RenderRedis) -> None:
    # A restarted cache answers -LOADING until its RDB is in memory: not Ready (the startup
    # probe's budget covers it), while the liveness probe (a TCP connect) passes: a loading
    # Redis is never killed.
    redis = render_redis(SMALL)
    redis.start()
    keys = 5000
    with redis.client() as c:
        for start in range(0, keys, 500):
            c.call("MSET", *(x for i in range(start, start + 500) for x in (f"k{i}", "v")))
    redis.stop()  # SIGTERM saves the RDB (default persistence)
    # redis-server's testing options: 1 ms per key loaded (5 s in all), clients served while
    # loading every KiB instead of every 2 MB.
    redis.extra_args = [
        "--key-load-delay",
        "1000",
        "--loading-process-events-interval-bytes",
        "1024",
    ]
    redis.start()
    loading = redis.probe("readinessProbe")
    assert loading.returncode != 0, loading
    assert "LOADING" in loading.stdout + loading.stderr
    socket.create_connection(("127.0.0.1", redis.port), timeout=5).close()
    deadline = time.monotonic() + 60
    while (done := redis.probe("readinessProbe")).returncode != 0:
        assert "LOADING" in done.stdout + done.stderr, done
        assert time.monotonic() < deadline, "still loading after 60 s"
        time.sleep(0.2)
    with redis.client() as c:
        assert c.call("DBSIZE") == keys


def test_probe_fails_when_redis_is_down(render_redis: RenderRedis) -> None:
    redis = render_redis(SMALL)  # never started: nothing listens on its port
    assert redis.probe("readinessProbe").returncode != 0


def test_without_e_redis_cli_ping_passes_on_an_error_reply(render_redis: RenderRedis) -> None:
    # Why the probe has "-e": plain `redis-cli ping` exits 0 when the reply is NOAUTH, so it
    # would report a Redis that refuses every client (or is still -LOADING) as Ready.
    redis = render_redis(SMALL)
    redis.start()
    redis.container["readinessProbe"]["exec"]["command"] = ["redis-cli", "ping"]
    done = redis.probe("readinessProbe", {"REDISCLI_AUTH": "wrong"})
    assert "NOAUTH" in done.stdout + done.stderr
    assert done.returncode == 0


# --- (e) every rendered option is accepted ---------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {},
        SMALL,
        {"resources": {"requests": {"cpu": "1"}}, "metrics": {"enabled": True}},
        {"resources": {"limits": {"memory": "2Gi"}}, "redis": {"persistence": "AOF"}},
        {
            "resources": {"requests": {"memory": "300Mi"}},
            "redis": {"persistence": "None", "maxMemoryPolicy": "volatile-ttl"},
        },
        {"redis": {"maxMemory": "100Mi", "maxMemoryPolicy": "allkeys-lfu"}},
        *({"redis": {"maxMemoryPolicy": str(p)}} for p in MaxMemoryPolicy),
    ],
    ids=lambda spec: str(spec)[:60],
)
def test_redis_accepts_and_applies_every_rendered_option(
    render_redis: RenderRedis, spec: dict[str, Any]
) -> None:
    redis = render_redis(spec)
    redis.start()  # a rejected option: redis-server exits, start() raises, the test fails
    cache = redis.cache
    mode = _redis.persistence(cache)
    expected = {
        "maxmemory": str(_redis.maxmemory_bytes(cache)),
        "maxmemory-policy": str(_redis.max_memory_policy(cache)),
        "appendonly": "yes" if mode is Persistence.AOF else "no",
        "save": "300 1" if mode is Persistence.RDB else "",
        "protected-mode": "yes",
        "dir": str(redis.data_dir),
        "port": str(redis.port),
        "loglevel": "notice",
    }
    if mode is Persistence.AOF:
        expected["appendfsync"] = "everysec"
    with redis.client() as c:
        for name, value in expected.items():
            assert c.call("CONFIG", "GET", name) == [name.encode(), value.encode()], name
        assert c.call("CONFIG", "GET", "requirepass") == [b"requirepass", redis.password.encode()]


def test_a_rejected_option_fails_the_start(render_redis: RenderRedis) -> None:
    # The fixture's guarantee: an option redis-server refuses is an error, not a skip.
    redis = render_redis(SMALL)
    redis.container["args"] = [*redis.container["args"], "--maxmemory-policy", "evict-nothing"]
    with pytest.raises(RedisStartError, match="maxmemory-policy"):
        redis.start()
