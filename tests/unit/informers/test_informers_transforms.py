"""Transforms applied before objects are stored."""

from __future__ import annotations

from aimctl.informers import (
    LAST_APPLIED_ANNOTATION,
    compose,
    strip_last_applied,
    strip_managed_fields,
)


def test_strip_managed_fields_removes_only_managed_fields() -> None:
    o = {"metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}]}, "data": {}}
    assert strip_managed_fields(o) == {"metadata": {"name": "a"}, "data": {}}
    assert strip_managed_fields({"kind": "X"}) == {"kind": "X"}


def test_strip_last_applied_removes_the_annotation_and_an_emptied_map() -> None:
    o = {"metadata": {"name": "a", "annotations": {LAST_APPLIED_ANNOTATION: "{}"}}}
    assert strip_last_applied(o) == {"metadata": {"name": "a"}}
    kept = {"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: "{}", "x": "y"}}}
    assert strip_last_applied(kept) == {"metadata": {"annotations": {"x": "y"}}}


def test_compose_applies_left_to_right() -> None:
    both = compose(strip_managed_fields, strip_last_applied)
    o = {"metadata": {"managedFields": [], "annotations": {LAST_APPLIED_ANNOTATION: "{}"}}}
    assert both(o) == {"metadata": {}}
