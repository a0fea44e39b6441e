"""Predicates: filters that decide whether an event should enqueue anything.

A predicate sees the event, never the queue. Predicates filter *events*, not state: a filtered
update is simply not a trigger; the next reconcile still sees the latest object. Filtering too
much (say, status-only updates of the primary object) means a wiped status is not self-healed
until another trigger; that trade-off is the predicate user's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aimctl.objects import labels_of, meta

__all__ = [
    "Predicate",
    "PredicateFuncs",
    "and_",
    "annotation_changed",
    "generation_changed",
    "label_changed",
    "label_selector",
    "not_",
    "or_",
    "resource_version_changed",
]

Obj = Mapping[str, Any]


class Predicate(Protocol):
    def create(self, obj: Obj) -> bool: ...
    def update(self, old: Obj, new: Obj) -> bool: ...
    def delete(self, obj: Obj) -> bool: ...


def _yes(*_: Obj) -> bool:
    return True


@dataclass(frozen=True)
class PredicateFuncs:
    """A predicate from plain functions; an event kind without a function passes."""

    on_create: Callable[[Obj], bool] = _yes
    on_update: Callable[[Obj, Obj], bool] = _yes
    on_delete: Callable[[Obj], bool] = _yes

    def create(self, obj: Obj) -> bool:
        return self.on_create(obj)

    def update(self, old: Obj, new: Obj) -> bool:
        return self.on_update(old, new)

    def delete(self, obj: Obj) -> bool:
        return self.on_delete(obj)


def generation_changed() -> Predicate:
    """Pass updates only when ``metadata.generation`` changed (spec changes, not status/metadata).

    Like controller-runtime's GenerationChangedPredicate it also filters resyncs. Kinds without
    a generation (ConfigMap, ...) never pass updates: don't use it for them.
    """
    return PredicateFuncs(
        on_update=lambda old, new: meta(old).get("generation") != meta(new).get("generation")
    )


def resource_version_changed() -> Predicate:
    """Pass updates only when ``metadata.resourceVersion`` changed, i.e. filter resyncs."""
    return PredicateFuncs(
        on_update=lambda old, new: (
            meta(old).get("resourceVersion") != meta(new).get("resourceVersion")
        )
    )


def label_changed() -> Predicate:
    """Pass updates only when ``metadata.labels`` changed (controller-runtime's
    LabelChangedPredicate); creates and deletes pass, resyncs do not. Absent and empty labels
    are the same (Go's DeepEqual tells nil from empty; JSON round trips do not keep that)."""
    return PredicateFuncs(on_update=lambda old, new: labels_of(old) != labels_of(new))


def annotation_changed() -> Predicate:
    """Pass updates only when ``metadata.annotations`` changed (controller-runtime's
    AnnotationChangedPredicate); creates and deletes pass, resyncs do not."""
    return PredicateFuncs(
        on_update=lambda old, new: (
            (meta(old).get("annotations") or {}) != (meta(new).get("annotations") or {})
        )
    )


def label_selector(matches: Callable[[Mapping[str, str]], bool]) -> Predicate:
    """Pass events for objects whose labels satisfy ``matches`` (for updates: the new object).

    ``matches`` is usually ``aimctl.informers.LabelSelector.parse("a=b,c in (d)").matches``.
    """
    return PredicateFuncs(
        on_create=lambda o: matches(labels_of(o)),
        on_update=lambda _old, new: matches(labels_of(new)),
        on_delete=lambda o: matches(labels_of(o)),
    )


def and_(*preds: Predicate) -> Predicate:
    return PredicateFuncs(
        on_create=lambda o: all(p.create(o) for p in preds),
        on_update=lambda a, b: all(p.update(a, b) for p in preds),
        on_delete=lambda o: all(p.delete(o) for p in preds),
    )


def or_(*preds: Predicate) -> Predicate:
    return PredicateFuncs(
        on_create=lambda o: any(p.create(o) for p in preds),
        on_update=lambda a, b: any(p.update(a, b) for p in preds),
        on_delete=lambda o: any(p.delete(o) for p in preds),
    )


def not_(pred: Predicate) -> Predicate:
    return PredicateFuncs(
        on_create=lambda o: not pred.create(o),
        on_update=lambda a, b: not pred.update(a, b),
        on_delete=lambda o: not pred.delete(o),
    )
