"""SharedInformer: store convergence, handler fan-out, tombstones, resync, sync errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aimctl._internal.backoff import BackoffPolicy
from aimctl._internal.clock import ManualClock
from aimctl.client import Forbidden, Gone, Object, ServerError, TransportError
from aimctl.informers import (
    CONTROLLER_UID_INDEX,
    DeletedFinalStateUnknown,
    FuncHandler,
    IndexFuncError,
    InformerMetrics,
    InformerSyncError,
    ReflectorOptions,
    SharedInformer,
    index_by_controller_uid,
)
from aimctl.informers.testing import FakeListerWatcher, GatedSleep, RecordingSleep, until


class Recorder:
    """An EventHandler that records calls as tuples."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_add(self, obj: Object, is_initial_list: bool) -> None:
        self.calls.append(("add", obj["metadata"]["name"], is_initial_list))

    def on_update(self, old: Object, new: Object) -> None:
        self.calls.append(("update", new["metadata"]["name"], old is new))

    def on_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.calls.append(("tombstone", obj.key))
        else:
            self.calls.append(("delete", obj["metadata"]["name"]))


def new_informer(
    server: FakeListerWatcher, *, sleep: Any = None, **options: Any
) -> tuple[SharedInformer, InformerMetrics]:
    metrics = InformerMetrics()
    opts = {"initial_list": "list", "backoff": BackoffPolicy(jitter=0.0), **options}
    informer = SharedInformer(
        server,
        options=ReflectorOptions(**opts),
        metrics=metrics,
        clock=ManualClock(),
        sleep=sleep or RecordingSleep(),
        rng=random.Random(1),
    )
    return informer, metrics


@pytest.fixture
def server() -> FakeListerWatcher:
    s = FakeListerWatcher()
    s.create("a", data={"k": "1"})
    s.create("b", labels={"app": "web"})
    return s


@pytest.fixture
async def running(server: FakeListerWatcher) -> AsyncIterator[tuple[SharedInformer, Recorder]]:
    informer, _ = new_informer(server)
    rec = Recorder()
    informer.add_handler(rec)
    await informer.start()
    await informer.wait_for_sync(timeout=None)
    await until(lambda: server.open_streams == 1)
    yield informer, rec
    await informer.stop()


def store_matches_server(informer: SharedInformer, server: FakeListerWatcher) -> bool:
    cached = sorted(informer.store.list(), key=lambda o: str(o["metadata"]["name"]))
    return bool(cached == server.sorted_objects())


async def test_the_initial_list_reaches_handlers_as_adds_flagged_initial(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, rec = running
    assert informer.has_synced
    assert rec.calls == [("add", "a", True), ("add", "b", True)]
    assert store_matches_server(informer, server)


async def test_changes_reach_handlers_in_order_after_the_store_shows_them(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, rec = running
    seen_in_store: list[bool] = []
    informer.add_handler(
        FuncHandler(
            add=lambda o, _: seen_in_store.append(informer.store.get("default/c") is o),
            update=lambda _, n: seen_in_store.append(informer.store.get("default/a") is n),
            delete=lambda _: seen_in_store.append(informer.store.get("default/b") is None),
        )
    )
    seen_in_store.clear()  # drop the replay of existing objects
    rec.calls.clear()
    server.create("c")
    server.update("default/a", {"k": "2"})
    server.delete("default/b")
    await until(lambda: len(rec.calls) == 3)
    assert rec.calls == [("add", "c", False), ("update", "a", False), ("delete", "b")]
    assert seen_in_store == [True, True, True]
    assert store_matches_server(informer, server)


async def test_a_relist_delivers_only_differences_and_tombstones_for_missed_deletes(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, rec = running
    rec.calls.clear()
    b_before = informer.store.get("default/b")
    streams, server.streams = server.streams, []  # the watch misses everything below
    server.create("c")
    server.update("default/a", {"k": "2"})
    server.delete("default/a")
    server.create("a", data={"k": "3"})  # deleted and re-created while away
    server.silent_delete("default/b")
    server.create("b", labels={"app": "web"})
    server.create("d")
    server.delete("default/d")
    server.compact()
    server.streams = streams
    streams[0].fail(Gone(410, "Expired", "too old resource version"))
    await until(
        lambda: informer.reflector is not None and server.open_streams == 1 and len(rec.calls) >= 3
    )
    assert rec.calls == [("update", "a", False), ("update", "b", False), ("add", "c", False)]
    assert informer.store.get("default/b") is not b_before
    assert store_matches_server(informer, server)
    server.silent_delete("default/c")
    server.compact()
    server.streams[0].fail(Gone(410, "Expired", "too old resource version"))
    await until(lambda: len(rec.calls) == 4)
    assert rec.calls[-1] == ("tombstone", "default/c")
    assert store_matches_server(informer, server)


async def test_unchanged_objects_keep_their_identity_across_a_relist(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, rec = running
    before = informer.store.get("default/a")
    rec.calls.clear()
    server.compact()
    server.rv += 1
    server.compacted = server.rv
    server.streams[0].fail(Gone(410, "Expired", "too old"))
    await until(lambda: len(server.list_calls()) == 2 and server.open_streams == 1)
    assert informer.store.get("default/a") is before
    assert rec.calls == []


async def test_a_failing_handler_is_logged_and_counted_and_others_still_run(
    server: FakeListerWatcher,
) -> None:
    informer, metrics = new_informer(server)

    def broken(obj: Object, initial: bool) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(FuncHandler(add=broken))
    rec = Recorder()
    informer.add_handler(rec)
    await informer.start()
    await informer.wait_for_sync()
    server.create("c")
    await until(lambda: len(rec.calls) == 3)
    await informer.stop()
    assert rec.calls[-1] == ("add", "c", False)
    assert metrics.handler_errors.labels("v1/ConfigMap", "").value == 3


async def test_a_handler_added_after_sync_first_gets_the_cache_as_initial_adds(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, _ = running
    late = Recorder()
    informer.add_handler(late)
    assert sorted(late.calls) == [("add", "a", True), ("add", "b", True)]
    server.create("c")
    await until(lambda: len(late.calls) == 3)
    assert late.calls[-1] == ("add", "c", False)


async def test_a_removed_handler_gets_nothing_more(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, rec = running
    other = Recorder()
    reg = informer.add_handler(other)
    reg.remove()
    other.calls.clear()
    server.create("c")
    await until(lambda: len(rec.calls) == 3)
    assert other.calls == []


async def test_resync_replays_the_cache_as_updates_with_old_is_new_without_api_calls(
    server: FakeListerWatcher,
) -> None:
    sleep = GatedSleep()
    informer, _ = new_informer(server, sleep=sleep)
    rec = Recorder()
    informer.add_handler(rec, resync_period=60)
    await informer.start()
    await informer.wait_for_sync()
    await until(lambda: sleep.waiting == 1)
    assert 54 <= sleep.delays[0] < 66  # jitter in [0.9, 1.1)
    calls_before = len(server.calls)
    rec.calls.clear()
    sleep.release()
    await until(lambda: len(rec.calls) == 2)
    assert sorted(rec.calls) == [("update", "a", True), ("update", "b", True)]
    assert len(server.calls) == calls_before
    await informer.stop()


def test_resync_periods_under_a_second_are_refused(server: FakeListerWatcher) -> None:
    informer, _ = new_informer(server)
    with pytest.raises(ValueError):
        informer.add_handler(Recorder(), resync_period=0.5)
    with pytest.raises(ValueError):
        SharedInformer(server, resync_period=0.5)


def test_handlers_without_a_resync_period_take_the_informers_and_zero_disables_it(
    server: FakeListerWatcher,
) -> None:
    informer = SharedInformer(server, resync_period=600)
    assert informer.add_handler(Recorder()).resync_period == 600
    assert informer.add_handler(Recorder(), resync_period=60).resync_period == 60
    assert informer.add_handler(Recorder(), resync_period=0).resync_period is None
    assert new_informer(server)[0].add_handler(Recorder()).resync_period is None


async def test_wait_for_sync_fails_fast_on_forbidden_naming_the_kind_and_the_server_reason(
    server: FakeListerWatcher,
) -> None:
    message = 'configmaps is forbidden: User "bob" cannot list resource "configmaps"'
    server.list_errors = [Forbidden(403, "Forbidden", message, method="GET", path="/api/v1/x")] * 50
    informer, metrics = new_informer(server)
    await informer.start()
    with pytest.raises(InformerSyncError) as err:
        await informer.wait_for_sync(timeout=None)
    await informer.stop()
    assert "v1/ConfigMap" in str(err.value)
    assert message in str(err.value)
    assert "403" in str(err.value)
    assert isinstance(err.value.error, Forbidden)
    assert not err.value.timed_out
    assert metrics.synced.labels("v1/ConfigMap", "").get() == 0


async def test_wait_for_sync_times_out_loudly_with_the_last_error(
    server: FakeListerWatcher,
) -> None:
    server.list_errors = [ServerError(503, "ServiceUnavailable", "etcd is down")] * 50
    informer, _ = new_informer(server, sleep=GatedSleep())
    await informer.start()
    await until(lambda: informer.last_error is not None)
    with pytest.raises(InformerSyncError, match=r"did not sync within 0s.*etcd is down") as err:
        await informer.wait_for_sync(timeout=0)
    assert err.value.timed_out
    await informer.stop()


async def test_wait_for_sync_on_a_never_started_informer_says_so(server: FakeListerWatcher) -> None:
    informer, _ = new_informer(server)
    with pytest.raises(InformerSyncError, match="never started"):
        await informer.wait_for_sync(timeout=0)


async def test_recovery_after_errors_converges_and_clears_nothing(
    server: FakeListerWatcher,
) -> None:
    server.list_errors = [TransportError("connection refused")] * 3
    informer, metrics = new_informer(server)
    rec = Recorder()
    informer.add_handler(rec)
    await informer.start()
    await informer.wait_for_sync()
    await informer.stop()
    assert store_matches_server(informer, server)
    assert metrics.synced.labels("v1/ConfigMap", "").get() == 1
    assert metrics.objects.labels("v1/ConfigMap", "").get() == 2


async def test_cached_objects_are_read_only_and_stripped_of_managed_fields(
    server: FakeListerWatcher,
) -> None:
    server.create("m", extra_meta={"managedFields": [{"manager": "kubectl"}]})
    informer, _ = new_informer(server)
    rec = Recorder()
    informer.add_handler(rec)
    await informer.start()
    await informer.wait_for_sync()
    await informer.stop()
    m = informer.store.get("default/m")
    assert m is not None
    assert "managedFields" not in m["metadata"]
    with pytest.raises(TypeError):
        m["data"]["x"] = "y"
    for o in informer.store.list():
        with pytest.raises(TypeError):
            o["metadata"]["labels"] = {}


async def test_a_transform_that_raises_stores_the_object_as_received(
    server: FakeListerWatcher,
) -> None:
    def bad(obj: Object) -> Object:
        raise KeyError("bug")

    metrics = InformerMetrics()
    informer = SharedInformer(
        server,
        transform=bad,
        options=ReflectorOptions(initial_list="list"),
        metrics=metrics,
        sleep=RecordingSleep(),
    )
    await informer.start()
    await informer.wait_for_sync()
    await informer.stop()
    assert len(informer.store) == 2
    assert metrics.transform_errors.labels("v1/ConfigMap", "").value == 2


async def test_user_code_failures_are_exported_per_kind_and_scope(
    server: FakeListerWatcher,
) -> None:
    registry = CollectorRegistry()

    def bad_transform(obj: Object) -> Object:
        raise KeyError("bug")

    def bad_handler(obj: Object, initial: bool) -> None:
        raise RuntimeError("handler bug")

    informer = SharedInformer(
        server,
        transform=bad_transform,
        options=ReflectorOptions(initial_list="list"),
        metrics=InformerMetrics.for_registry(registry),
        sleep=RecordingSleep(),
    )
    informer.add_handler(FuncHandler(add=bad_handler))
    await informer.start()
    await informer.wait_for_sync()
    await informer.stop()
    text = generate_latest(registry).decode()
    labels = 'kind="v1/ConfigMap",scope=""'
    assert f"aimctl_informer_handler_errors_total{{{labels}}} 2.0" in text
    assert f"aimctl_informer_transform_errors_total{{{labels}}} 2.0" in text
    assert f"aimctl_informer_index_errors_total{{{labels}}} 0.0" in text


async def test_an_index_failure_on_a_watch_event_is_counted_and_redelivered_by_a_relist(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    # Before issue 14 the object was cached without its index entry and nothing said so.
    informer, rec = running
    metrics = informer._metrics
    broken = True

    def by_team(o: Object) -> list[str]:
        if broken and o["metadata"]["name"] == "bad":
            raise ValueError("no team")
        return [o["data"].get("team", "none")]

    informer.store.add_indexer("team", by_team)
    rec.calls.clear()
    server.create("bad", data={"team": "red"})
    await until(lambda: metrics.index_errors.value >= 2)  # the watch event, then a relist
    assert "default/bad" not in informer.store
    assert isinstance(informer.last_error, IndexFuncError)
    assert informer.last_error.key == "default/bad"
    assert len(server.list_calls()) >= 2
    assert rec.calls == []  # nothing delivered for an object the cache does not hold
    broken = False
    await until(lambda: "default/bad" in informer.store)
    assert [o["metadata"]["name"] for o in informer.store.by_index("team", "red")] == ["bad"]
    assert rec.calls == [("add", "bad", False)]
    assert informer.has_synced


async def test_an_index_failure_in_the_first_list_fails_wait_for_sync_at_once(
    server: FakeListerWatcher,
) -> None:
    informer, metrics = new_informer(server, sleep=GatedSleep())

    def by_label(o: Object) -> list[str]:
        return [o["metadata"]["labels"]["app"]]  # "a" has no labels: KeyError

    informer.store.add_indexer("app", by_label)
    rec = Recorder()
    informer.add_handler(rec)
    await informer.start()
    with pytest.raises(InformerSyncError) as err:
        await informer.wait_for_sync(timeout=None)
    await informer.stop()
    assert isinstance(err.value.error, IndexFuncError)
    assert not err.value.timed_out
    assert "'app'" in str(err.value)
    assert "'default/a'" in str(err.value)
    assert not informer.has_synced
    assert rec.calls == [("add", "b", True)]  # the rest of the list is cached and delivered
    assert metrics.index_errors.labels("v1/ConfigMap", "").value == 1


async def test_an_unexpected_crash_restarts_the_loop_with_a_relist(
    server: FakeListerWatcher,
) -> None:
    sleep = RecordingSleep()
    informer, _ = new_informer(server, sleep=sleep)
    server.list_errors = [ZeroDivisionError("bug in a lister")]
    rec = Recorder()
    informer.add_handler(rec)
    await informer.start()
    await informer.wait_for_sync()
    await informer.stop()
    assert sleep.delays == pytest.approx([0.8])
    assert rec.calls == [("add", "a", True), ("add", "b", True)]


async def test_indexes_follow_watch_events(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, rec = running
    informer.store.add_indexer(CONTROLLER_UID_INDEX, index_by_controller_uid)
    server.create("child", owner_uid="owner-1")
    await until(lambda: len(rec.calls) == 3)
    assert [
        o["metadata"]["name"] for o in informer.store.by_index(CONTROLLER_UID_INDEX, "owner-1")
    ] == ["child"]
    server.delete("default/child")
    await until(lambda: len(rec.calls) == 4)
    assert informer.store.by_index(CONTROLLER_UID_INDEX, "owner-1") == []


async def test_stop_closes_the_watch_and_keeps_the_store(
    running: tuple[SharedInformer, Recorder], server: FakeListerWatcher
) -> None:
    informer, _ = running
    await informer.stop()
    assert server.open_streams == 0
    assert not informer.running
    assert len(informer.store) == 2
    await asyncio.sleep(0)
