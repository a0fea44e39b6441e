"""The metrics filter's pieces that need no apiserver: the TTL cache, the bearer header, and a
500 (not a 401) when the apiserver cannot be reached at all."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from aimctl.client import ClusterConfig, RestClient, load_kubeconfig
from aimctl.manager._metrics_auth import MetricsAuth, TTLCache, UserInfo, bearer_token


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10.0, 8, clock=clock)
    cache.put("a", 1)
    clock.now += 9.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0  # dropped when found expired


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    cache: TTLCache[str, int] = TTLCache(10.0, 2, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_a_put_refreshes_the_expiry() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10.0, 2, clock=clock)
    cache.put("a", 1)
    clock.now += 8
    cache.put("a", 2)
    clock.now += 8
    assert cache.get("a") == 2


def test_a_cache_must_hold_something() -> None:
    with pytest.raises(ValueError):
        TTLCache(1.0, 0)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),  # the scheme is case-insensitive (RFC 7235)
        ("BEARER  abc ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("Basic dXNlcjpwYXNz", None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


_STATUS_USER = {
    "username": "system:serviceaccount:ns:sa",
    "uid": "u1",
    "groups": ["system:serviceaccounts", "system:authenticated"],
}


def test_user_info_from_a_token_review_is_hashable_and_ordered() -> None:
    user = UserInfo.from_status({**_STATUS_USER, "extra": {"b": ["2"], "a": ["1"]}})
    assert user.extra == (("a", ("1",)), ("b", ("2",)))  # the SAR cache key: order-free
    assert {user: 1}[UserInfo.from_status({**_STATUS_USER, "extra": {"a": ["1"], "b": ["2"]}})]


async def _nowhere(tmp_path: Path) -> ClusterConfig:
    """A configuration for a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "operator"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return await load_kubeconfig(str(kubeconfig))


async def test_an_unreachable_apiserver_is_a_500_and_is_not_cached(tmp_path: Path) -> None:
    async with RestClient(await _nowhere(tmp_path)) as rest:
        auth = MetricsAuth(rest, timeout=5.0)
        first = await auth.decide("Bearer t", "/metrics")
        assert first.status == 500
        second = await auth.decide("Bearer t", "/metrics")
        assert second.status == 500
        assert auth.reviews == 2  # asked again: failures are not cached
        assert len(auth.tokens) == 0


async def test_no_token_is_refused_without_asking(tmp_path: Path) -> None:
    async with RestClient(await _nowhere(tmp_path)) as rest:
        auth = MetricsAuth(rest)
        for header in (None, "", "Basic x", "Bearer "):
            assert (await auth.decide(header, "/metrics")).status == 401
        assert auth.reviews == 0
