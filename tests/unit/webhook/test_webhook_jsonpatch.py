"""create_patch: applying it turns the original into the current document, exactly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, strategies as st

from aimctl.webhook import create_patch
from tests.unit.webhook.jsonpatch_apply import apply_patch

keys = st.sampled_from(["a", "b", "c/d", "e~f", "", "labels"])
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
documents = st.dictionaries(keys, json_values, max_size=5)


@given(documents, documents)
def test_applying_the_patch_gives_the_current_document(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    patch = create_patch(a, b)
    out = apply_patch(a, patch)
    assert out == b
    # Types are kept: True is not 1.
    assert json.dumps(out, sort_keys=True) == json.dumps(b, sort_keys=True)


@given(documents)
def test_equal_documents_give_an_empty_patch(a: dict[str, Any]) -> None:
    assert create_patch(a, a) == []


def test_paths_are_escaped_and_ordered() -> None:
    patch = create_patch(
        {"metadata": {"name": "x"}},
        {"metadata": {"name": "x", "labels": {"a/b": "1", "c~d": "2"}}, "spec": {"n": 1}},
    )
    assert patch == [
        {"op": "add", "path": "/metadata/labels", "value": {"a/b": "1", "c~d": "2"}},
        {"op": "add", "path": "/spec", "value": {"n": 1}},
    ]
    assert create_patch({"l": {"a/b": 1}}, {"l": {"a/b": 2}}) == [
        {"op": "replace", "path": "/l/a~1b", "value": 2}
    ]


def test_a_bool_replacing_an_int_is_a_change() -> None:
    assert create_patch({"x": 1}, {"x": True}) == [{"op": "replace", "path": "/x", "value": True}]
