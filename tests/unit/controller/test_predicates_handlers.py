from dataclasses import dataclass, field
from typing import Any

from aimctl.controller import (
    EnqueueHandler,
    Request,
    and_,
    annotation_changed,
    for_controller_owner,
    for_object,
    generation_changed,
    label_changed,
    label_selector,
    not_,
    or_,
    resource_version_changed,
)


def obj(
    name: str,
    *,
    gen: int = 1,
    rv: str = "1",
    labels: dict[str, str] | None = None,
    owners: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "generation": gen,
            "resourceVersion": rv,
            "labels": labels or {},
            "ownerReferences": owners or [],
        }
    }


@dataclass
class FakeQueue:
    added: list[tuple[Request, int]] = field(default_factory=list)

    shutting_down: bool = False

    def add(self, item: Request, priority: int = 0) -> None:
        self.added.append((item, priority))


def test_generation_changed_filters_status_only_updates() -> None:
    p = generation_changed()
    assert p.create(obj("a"))
    assert not p.update(obj("a", rv="1"), obj("a", rv="2"))
    assert p.update(obj("a", gen=1), obj("a", gen=2))


def test_resource_version_changed_filters_resyncs() -> None:
    p = resource_version_changed()
    assert not p.update(obj("a", rv="5"), obj("a", rv="5"))
    assert p.update(obj("a", rv="5"), obj("a", rv="6"))


def test_label_changed_passes_only_label_changes_on_update() -> None:
    p = label_changed()
    assert p.create(obj("a")) and p.delete(obj("a"))
    assert not p.update(obj("a", rv="1"), obj("a", rv="2", gen=2))
    assert p.update(obj("a", labels={"x": "1"}), obj("a", labels={"x": "2"}))
    assert p.update(obj("a"), obj("a", labels={"x": "1"}))
    no_labels = {"metadata": {"name": "a"}}
    assert not p.update(no_labels, obj("a"))  # absent and empty are the same


def test_annotation_changed_passes_only_annotation_changes_on_update() -> None:
    def annotated(value: str | None, rv: str = "1") -> dict[str, Any]:
        o = obj("a", rv=rv)
        if value is not None:
            o["metadata"]["annotations"] = {"note": value}
        return o

    p = annotation_changed()
    assert p.create(annotated("x")) and p.delete(annotated("x"))
    assert not p.update(annotated("x"), annotated("x", rv="2"))
    assert p.update(annotated("x"), annotated("y"))
    assert p.update(annotated(None), annotated("y"))
    assert not p.update(annotated(None), annotated(None, rv="2"))


def test_combinators() -> None:
    sel = label_selector(lambda labels: labels.get("app") == "x")
    assert sel.create(obj("a", labels={"app": "x"}))
    assert not sel.create(obj("a"))
    both = and_(sel, generation_changed())
    assert not both.update(obj("a", labels={"app": "x"}), obj("a", labels={"app": "x"}))
    either = or_(sel, generation_changed())
    assert either.update(obj("a"), obj("a", gen=2))
    assert not not_(sel).create(obj("a", labels={"app": "x"}))


def test_owner_mapper_follows_only_the_controller_reference_of_the_right_kind() -> None:
    m = for_controller_owner("aim.silogen.ai", "AIMKVCache")
    ref = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "name": "c",
        "controller": True,
    }
    assert list(m(obj("s", owners=[ref]))) == [Request("ns", "c")]
    assert list(m(obj("s", owners=[{**ref, "controller": False}]))) == []
    assert list(m(obj("s", owners=[{**ref, "apiVersion": "other.io/v1"}]))) == []


def test_handler_uses_low_priority_for_initial_list_and_resync() -> None:
    q = FakeQueue()
    h = EnqueueHandler(q, for_object, low_priority=-100)
    h.on_add(obj("a"), True)
    h.on_add(obj("b"), False)
    h.on_update(obj("c", rv="1"), obj("c", rv="1"))
    h.on_update(obj("d", rv="1"), obj("d", rv="2"))
    assert q.added == [
        (Request("ns", "a"), -100),
        (Request("ns", "b"), 0),
        (Request("ns", "c"), -100),
        (Request("ns", "d"), 0),
    ]


def test_handler_wakes_old_and_new_owner_when_owner_changes() -> None:
    q = FakeQueue()
    ref = {"apiVersion": "v1", "kind": "X", "controller": True}
    h = EnqueueHandler(q, for_controller_owner("", "X"), low_priority=-100)
    h.on_update(
        obj("s", rv="1", owners=[{**ref, "name": "old"}]),
        obj("s", rv="2", owners=[{**ref, "name": "new"}]),
    )
    assert sorted(r.name for r, _ in q.added) == ["new", "old"]


def test_handler_unwraps_tombstones_and_applies_predicates() -> None:
    @dataclass
    class Tombstone:
        key: str
        obj: dict[str, Any]

    q = FakeQueue()
    h = EnqueueHandler(
        q, for_object, [label_selector(lambda labels: "keep" in labels)], low_priority=-1
    )
    h.on_delete(Tombstone("ns/a", obj("a", labels={"keep": "1"})))
    h.on_delete(obj("b"))
    assert q.added == [(Request("ns", "a"), 0)]
