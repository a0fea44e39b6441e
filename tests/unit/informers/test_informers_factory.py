"""InformerFactory: one informer per (kind, scope, selector), lifecycle, loud sync failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aimctl.client import GVK, ClusterConfig, Object, Resource, RestClient, RESTMapper
from aimctl.informers import (
    ByObject,
    InformerFactory,
    InformerSyncError,
    SharedInformer,
    strip_managed_fields,
)

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


def test_field_selectors_and_metadata_only_are_part_of_an_informers_identity(
    factory: InformerFactory,
) -> None:
    by_name = factory.informer(CM, "ns", field_selector="metadata.name=x")
    assert factory.informer(CM, "ns", field_selector={"metadata.name": "x"}) is by_name
    assert factory.informer(CM, "ns", field_selector="metadata.name==x") is by_name
    assert factory.informer(CM, "ns") is not by_name
    assert by_name.field_selector == "metadata.name=x"
    assert by_name.scope == "namespace=ns;fields=metadata.name=x"
    meta = factory.informer(CM, "ns", "app=web", "metadata.name!=y", metadata_only=True)
    assert meta is not factory.informer(CM, "ns", "app=web", "metadata.name!=y")
    assert meta.metadata_only
    assert meta.scope == "namespace=ns;labels=app=web;fields=metadata.name!=y;metadata-only"
    with pytest.raises(ValueError):
        factory.informer(CM, field_selector="metadata.name")


def test_a_kinds_by_object_options_apply_to_every_informer_of_the_kind(
    factory: InformerFactory,
) -> None:
    def keep(obj: Object) -> Object:
        return obj

    factory.set_by_object(
        CM,
        ByObject(
            label_selector={"app": "web"},
            field_selector="metadata.name=x",
            transform=keep,
            resync_period=600,
            metadata_only=True,
        ),
    )
    informer = factory.informer(CM, "ns")
    assert informer.label_selector == "app=web"
    assert informer.field_selector == "metadata.name=x"
    assert informer.metadata_only
    assert informer.resync_period == 600
    assert informer._transform is keep
    # What the caller passes wins over the kind's options.
    other = factory.informer(CM, "ns", "app=db", metadata_only=False)
    assert (other.label_selector, other.field_selector) == ("app=db", "metadata.name=x")
    assert not other.metadata_only
    # Kinds without options keep the factory's defaults.
    node = factory.informer(NODE)
    assert node.label_selector is None
    assert node._transform is strip_managed_fields
    assert node.resync_period is None
    with pytest.raises(RuntimeError, match="before its first informer"):
        factory.set_by_object(CM, ByObject())
    with pytest.raises(ValueError):
        factory.set_by_object(GVK("", "v1", "Secret"), ByObject(field_selector="no operator"))
    with pytest.raises(ValueError):
        ByObject(resync_period=0.1)
    with pytest.raises(TypeError):
        ByObject(namespaces="one")


async def test_resolve_gives_one_informer_per_namespace_of_the_kind_or_the_caller(
    factory: InformerFactory,
) -> None:
    factory.set_by_object(CM, ByObject(namespaces=["a", "b", "a"], label_selector="x=1"))
    cms = await factory.resolve(CM, ["ignored"])
    assert [(i.namespace, i.label_selector) for i in cms] == [("a", "x=1"), ("b", "x=1")]
    assert await factory.resolve(CM) == cms
    nodes = await factory.resolve(NODE, ["ns1", "ns2"])  # cluster-scoped: one for all
    assert [(i.namespace, i.kind) for i in nodes] == [(None, "v1/Node")]
    secret = GVK("", "v1", "Secret")
    factory.mapper.add(Resource(secret, "secrets", True))
    assert [i.namespace for i in await factory.resolve(secret, ["n1", "n2"])] == ["n1", "n2"]
    assert [i.namespace for i in await factory.resolve(secret)] == [None]
