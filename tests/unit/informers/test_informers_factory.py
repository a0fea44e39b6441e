"""InformerFactory: one informer per (kind, scope, selector), lifecycle, loud sync failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aimctl.client import GVK, ClusterConfig, Resource, RestClient, RESTMapper
from aimctl.informers import InformerFactory, InformerSyncError, SharedInformer

CM = GVK("", "v1", "ConfigMap")
NODE = GVK("", "v1", "Node")


class NoAuth:
    async def auth_settings(self) -> dict[str, object]:
        return {}


@pytest_asyncio.fixture
async def factory() -> AsyncIterator[InformerFactory]:
    # Nothing listens on port 1: informers that start fail with connection refused.
    rest = RestClient(ClusterConfig("http://127.0.0.1:1", None, None, None, NoAuth()))
    mapper = RESTMapper(rest)
    mapper.add(Resource(CM, "configmaps", True))
    mapper.add(Resource(NODE, "nodes", False))
    f = InformerFactory(rest, mapper)
    yield f
    await f.stop()
    await rest.aclose()


def test_equal_requests_share_one_informer_and_selectors_compare_canonically(
    factory: InformerFactory,
) -> None:
    a = factory.informer(CM, "ns", "b=2,a=1")
    assert factory.informer(CM, "ns", {"a": "1", "b": "2"}) is a
    assert factory.informer(CM, "ns", "a==1, b=2") is a
    assert factory.informer(CM, "other", "a=1,b=2") is not a
    assert factory.informer(CM, "ns") is not a
    assert factory.informer(CM, None) is factory.informer(CM)
    assert a.scope == "namespace=ns;labels=a=1,b=2"
    assert len(factory.informers) == 4
    assert len(factory.informers_for(CM)) == 4
    assert factory.informers_for(NODE) == []
    with pytest.raises(ValueError):
        factory.informer(CM, "ns", "a in (")


async def test_informers_requested_after_start_are_started_at_once(
    factory: InformerFactory,
) -> None:
    def running(informer: SharedInformer) -> bool:
        return informer.running

    early = factory.informer(CM)
    assert not running(early)
    await factory.start()
    assert running(early)
    late = factory.informer(NODE)
    assert running(late)
    await factory.stop()
    assert not running(early)
    assert not running(late)


async def test_wait_for_sync_names_every_informer_that_did_not_sync(
    factory: InformerFactory,
) -> None:
    factory.informer(CM, "ns")
    factory.informer(NODE)
    await factory.start()
    with pytest.raises(InformerSyncError) as err:
        await factory.wait_for_sync(timeout=0)
    text = str(err.value) + " ".join(getattr(err.value, "__notes__", []))
    assert "v1/ConfigMap (namespace=ns)" in text
    assert "v1/Node" in text
    assert err.value.timed_out


async def test_wait_for_sync_with_no_informers_returns_at_once(factory: InformerFactory) -> None:
    await factory.wait_for_sync(timeout=0)
