"""The Redis configuration rendered from a cache spec (``reconcilers/kvcache/_redis.py``):
memory bound, eviction policy, persistence, and arguments redis-server can parse.

That redis-server really accepts and obeys them is ``tests/integration/redis/``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, strategies as st

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMKVCache, MaxMemoryPolicy, Persistence
from aimctl.reconcilers.kvcache import _redis as rc


def make(**spec: Any) -> AIMKVCache:
    return AIMKVCache.model_validate(
        {
            "apiVersion": "aim.silogen.ai/v1alpha1",
            "kind": "AIMKVCache",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u"},
            "spec": spec,
        }
    )


def parse_config(args: list[str]) -> dict[str, list[str]]:
    """``args`` as redis-server reads its command line (redis/redis src/server.c ``main``):
    an argument starting with ``--`` starts a config directive, every following argument is
    one of its values (``--save ""`` is ``save ""``). Raises on a value with no directive or a
    directive with no value, which redis-server would reject."""
    config: dict[str, list[str]] = {}
    current: str | None = None
    for arg in args:
        if arg.startswith("--"):
            current = arg[2:]
            assert current not in config, f"--{current} given twice"
            config[current] = []
        else:
            assert current is not None, f"value {arg!r} before any --option"
            config[current].append(arg)
    empty = [name for name, values in config.items() if not values]
    assert not empty, f"options without a value: {empty}"
    return config


# --- examples --------------------------------------------------------------------------------


def test_defaults_for_an_empty_spec() -> None:
    cache = make()
    assert rc.container_resources(cache) == rc.DEFAULT_RESOURCES
    assert rc.memory_bound_bytes(cache) == 1 << 30
    assert rc.maxmemory_bytes(cache) == 805306368  # 0.75 x 1Gi
    assert rc.persistence(cache) is Persistence.RDB
    assert rc.max_memory_policy(cache) is MaxMemoryPolicy.ALLKEYS_LRU
    assert parse_config(rc.redis_args(cache)) == {
        "port": ["6379"],
        "dir": ["/data"],
        "requirepass": ["$(REDIS_PASSWORD)"],
        "protected-mode": ["yes"],
        "maxmemory": ["805306368"],
        "maxmemory-policy": ["allkeys-lru"],
        "appendonly": ["no"],
        "save": ["300", "1"],
        "stop-writes-on-bgsave-error": ["no"],
        "loglevel": ["notice"],
    }


def test_two_gibibytes_with_rdb_leave_a_quarter_for_the_fork() -> None:
    cache = make(resources={"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}})
    assert rc.maxmemory_bytes(cache) == 1610612736 < 2 << 30


def test_no_persistence_leaves_a_tenth() -> None:
    cache = make(resources={"limits": {"memory": "2Gi"}}, redis={"persistence": "None"})
    assert rc.maxmemory_bytes(cache) == int(Decimal(2 << 30) * Decimal("0.9"))


def test_the_limit_wins_over_the_request_and_the_request_is_used_alone() -> None:
    both = make(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "4Gi"}})
    assert rc.memory_bound_bytes(both) == 4 << 30
    request_only = make(resources={"requests": {"memory": "512Mi"}})
    assert rc.memory_bound_bytes(request_only) == 512 << 20
    # A request alone is kept alone: no limit is invented.
    assert rc.container_resources(request_only) == {"requests": {"memory": "512Mi"}}


def test_resources_without_memory_get_the_default_memory_request_and_limit() -> None:
    cache = make(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "4"}})
    assert rc.container_resources(cache) == {
        "requests": {"cpu": "2", "memory": "1Gi"},
        "limits": {"cpu": "4", "memory": "1Gi"},
    }
    assert rc.maxmemory_bytes(cache) == 805306368


def test_quantities_are_canonical() -> None:
    cache = make(resources={"limits": {"memory": "2048Mi"}, "requests": {"cpu": "0.5"}})
    assert rc.container_resources(cache) == {
        "limits": {"memory": "2Gi"},
        "requests": {"cpu": "500m"},
    }


def test_max_memory_and_policy_override() -> None:
    cache = make(
        resources={"limits": {"memory": "2Gi"}},
        redis={"maxMemory": "1536Mi", "maxMemoryPolicy": "allkeys-lfu"},
    )
    config = parse_config(rc.redis_args(cache))
    assert config["maxmemory"] == [str(1536 << 20)]
    assert config["maxmemory-policy"] == ["allkeys-lfu"]


def test_maxmemory_is_never_zero_which_redis_reads_as_unlimited() -> None:
    assert rc.maxmemory_bytes(make(redis={"maxMemory": "0"})) == 1
    assert rc.maxmemory_bytes(make(resources={"limits": {"memory": "1"}})) == 1


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            Persistence.RDB,
            {"appendonly": ["no"], "save": ["300", "1"], "stop-writes-on-bgsave-error": ["no"]},
        ),
        (
            Persistence.AOF,
            {"appendonly": ["yes"], "appendfsync": ["everysec"], "save": [""]},
        ),
        (Persistence.NONE, {"appendonly": ["no"], "save": [""]}),
    ],
)
def test_persistence_args(mode: Persistence, expected: dict[str, list[str]]) -> None:
    assert parse_config(rc.persistence_args(mode)) == expected
    config = parse_config(rc.redis_args(make(redis={"persistence": str(mode)})))
    assert {k: config[k] for k in expected} == expected


def test_probe_command_fails_on_error_replies_without_a_shell() -> None:
    assert rc.PROBE_COMMAND == ("redis-cli", "-e", "ping")


# --- properties ------------------------------------------------------------------------------

# A memory quantity's unit and the range of its number: from 1 MiB (smaller is no Redis) to
# about a tebibyte.
_UNITS = st.sampled_from(
    [("Mi", 1, 1 << 20), ("Gi", 1, 1 << 10), ("M", 2, 10**6), ("", 1 << 20, 1 << 40)]
)
_PERSISTENCE = st.sampled_from([None, *Persistence])


@st.composite
def memory_quantities(draw: st.DrawFn) -> str:
    unit, low, high = draw(_UNITS)
    return f"{draw(st.integers(min_value=low, max_value=high))}{unit}"


@st.composite
def caches(draw: st.DrawFn) -> AIMKVCache:
    """Caches with any memory settings but no maxMemory override."""
    resources: dict[str, dict[str, str]] = {}
    if draw(st.booleans()):
        resources["limits"] = {"memory": draw(memory_quantities())}
    if draw(st.booleans()):
        resources["requests"] = {"memory": draw(memory_quantities())}
    if draw(st.booleans()):
        resources.setdefault("requests", {})["cpu"] = "1"
    spec: dict[str, Any] = {}
    empty_resources: bool = draw(st.booleans())
    if resources or empty_resources:
        spec["resources"] = resources
    mode = draw(_PERSISTENCE)
    if mode is not None:
        spec["redis"] = {"persistence": str(mode)}
    return make(**spec)


@given(caches())
def test_maxmemory_is_always_below_the_memory_the_container_may_use(cache: AIMKVCache) -> None:
    res = rc.container_resources(cache)
    bound = quantity.parse_quantity(
        res.get("limits", {}).get("memory") or res["requests"]["memory"]
    )
    got = rc.maxmemory_bytes(cache)
    assert 1 <= got < bound
    assert got <= bound * Decimal("0.9")
    # The headroom promised for a fork when a snapshot or AOF rewrite can run.
    if rc.persistence(cache) is not Persistence.NONE:
        assert got <= bound * Decimal("0.75")


@given(caches(), st.sampled_from([None, *MaxMemoryPolicy]))
def test_policy_is_allkeys_unless_chosen(cache: AIMKVCache, policy: MaxMemoryPolicy | None) -> None:
    if policy is None:
        assert parse_config(rc.redis_args(cache))["maxmemory-policy"][0].startswith("allkeys-")
    else:
        spec = cache.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        spec["redis"] = {**spec.get("redis", {}), "maxMemoryPolicy": str(policy)}
        chosen = make(**spec)
        assert parse_config(rc.redis_args(chosen))["maxmemory-policy"] == [str(policy)]


@given(caches())
def test_args_always_parse_as_redis_config(cache: AIMKVCache) -> None:
    config = parse_config(rc.redis_args(cache))
    assert int(config["maxmemory"][0]) == rc.maxmemory_bytes(cache)
    assert config["requirepass"] == ["$(REDIS_PASSWORD)"]
    assert config["dir"] == ["/data"]
    # Exactly one persistence choice is spelled out in full, never left to image defaults.
    assert config["appendonly"] in (["yes"], ["no"])
    assert "save" in config
