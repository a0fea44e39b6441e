"""Label selectors: Kubernetes' grammar and matching rules."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from aimctl.informers import (
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    to_field_selector,
    to_selector,
)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app=web", {}, False),
        ("app!=web", {"app": "db"}, True),
        ("app!=web", {}, True),  # != matches a missing key, as in Kubernetes
        ("app!=web", {"app": "web"}, False),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier in (a,b)", {"tier": "c"}, False),
        ("tier in (a,b)", {}, False),
        ("tier notin (a,b)", {"tier": "c"}, True),
        ("tier notin (a,b)", {}, True),  # notin matches a missing key
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("gpu", {"gpu": ""}, True),
        ("gpu", {}, False),
        ("!gpu", {}, True),
        ("!gpu", {"gpu": "x"}, False),
        ("replicas>2", {"replicas": "3"}, True),
        ("replicas>2", {"replicas": "2"}, False),
        ("replicas<2", {"replicas": "x"}, False),
        ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a"}, True),
        ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a", "legacy": "1"}, False),
        ("app.kubernetes.io/name=aimkvcache", {"app.kubernetes.io/name": "aimkvcache"}, True),
        ("", {"anything": "goes"}, True),
    ],
)
def test_selector_matches_like_kubernetes(
    selector: str, labels: dict[str, str], expected: bool
) -> None:
    assert LabelSelector.parse(selector).matches(labels) is expected


@pytest.mark.parametrize(
    "bad", ["app=", "=web", "a in b", "a in ()", "a in (x", "a,,b", "a>x", "app=we b", "a in (b))"]
)
def test_malformed_selectors_are_rejected(bad: str) -> None:
    # "app=" is valid in Kubernetes (empty value); everything else here is not.
    if bad == "app=":
        assert LabelSelector.parse(bad).matches({"app": ""})
        return
    with pytest.raises(ValueError):
        LabelSelector.parse(bad)


def test_string_form_is_canonical_so_equal_selectors_print_equally() -> None:
    a = LabelSelector.parse("b=2, a in (y,x),!c")
    b = LabelSelector.parse("!c,a in (x,y),b==2")
    assert str(a) == str(b) == "a in (x,y),b=2,!c"
    assert a == b


def test_object_form_matches_match_labels_and_expressions() -> None:
    sel = LabelSelector.from_api(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
            ],
        }
    )
    assert sel.matches({"app": "web", "tier": "a", "zone": "z1"})
    assert not sel.matches({"app": "web", "tier": "a", "zone": "z1", "env": "prod"})
    assert not sel.matches({"app": "web", "tier": "a"})
    with pytest.raises(ValueError):
        LabelSelector.from_api({"matchExpressions": [{"key": "a", "operator": "Gt"}]})


def test_to_selector_accepts_strings_maps_and_parsed_selectors() -> None:
    assert to_selector(None) is None
    assert to_selector("") is None
    assert to_selector({}) is None
    parsed = to_selector({"b": "2", "a": "1"})
    assert str(parsed) == "a=1,b=2"
    assert to_selector(parsed) is parsed
    assert str(to_selector("b=2,a=1")) == "a=1,b=2"


_names = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)


@given(st.dictionaries(_names, _names, max_size=4), st.dictionaries(_names, _names, max_size=4))
def test_printed_selectors_parse_back_to_the_same_selector(
    required: dict[str, str], labels: dict[str, str]
) -> None:
    sel = LabelSelector.from_labels(required)
    again = LabelSelector.parse(str(sel))
    assert again == sel
    assert again.matches(labels) == all(labels.get(k) == v for k, v in required.items())


# -- field selectors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("metadata.name=x", "metadata.name=x"),
        ("metadata.name==x", "metadata.name=x"),
        ("type!=kubernetes.io/tls, metadata.name=a", "metadata.name=a,type!=kubernetes.io/tls"),
        ("metadata.name=", "metadata.name="),  # an empty value is legal
        (r"metadata.name=a\,b\=c\\d", r"metadata.name=a\,b\=c\\d"),
        ("", ""),
    ],
)
def test_field_selectors_parse_to_a_canonical_form(text: str, canonical: str) -> None:
    assert str(FieldSelector.parse(text)) == canonical


def test_field_selector_values_unescape_and_maps_build_equal_selectors() -> None:
    parsed = FieldSelector.parse(r"metadata.name=a\,b")
    assert parsed.requirements == (FieldRequirement("metadata.name", "=", "a,b"),)
    assert to_field_selector({"metadata.name": "a,b"}) == parsed
    assert to_field_selector(parsed) is parsed
    assert to_field_selector("") is None
    assert to_field_selector(None) is None


@pytest.mark.parametrize("text", ["metadata.name", "=x", "a=b=c", "a=b,c", r"a=b\x", "a=b\\"])
def test_malformed_field_selectors_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        FieldSelector.parse(text)


@given(st.dictionaries(st.sampled_from(["metadata.name", "type", "spec.x"]), st.text()))
def test_printed_field_selectors_parse_back_to_themselves(fields: dict[str, str]) -> None:
    selector = FieldSelector.from_fields(fields)
    assert FieldSelector.parse(str(selector)) == selector
