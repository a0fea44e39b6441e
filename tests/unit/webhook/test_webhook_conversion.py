"""Hub-and-spoke conversion and the ConversionReview v1 contract (examples/widgets types)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, strategies as st

from aimctl.metrics import Counter
from aimctl.webhook import HubSpoke, convert_review
from examples.widgets.api import GROUP, MAX_SURGE_ANNOTATION, WidgetV1, WidgetV2

CONVERTER = HubSpoke(WidgetV2, WidgetV1)
V1, V2 = f"{GROUP}/v1", f"{GROUP}/v2"
VERSIONS = [V1, V2]

names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
small = st.integers(0, 1000)
strings = st.dictionaries(
    st.text("abcxyz./", min_size=1, max_size=8).filter(lambda k: k != MAX_SURGE_ANNOTATION),
    st.text(max_size=5),
    max_size=3,
)


@st.composite
def metadata(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": draw(names), "namespace": "ns"}
    for key in ("labels", "annotations"):
        value = draw(strings)
        if value:
            meta[key] = value
    if draw(st.booleans()):
        meta["resourceVersion"] = str(draw(small))
        meta["generation"] = draw(small)
    return meta


@st.composite
def status(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["ready"] = draw(st.booleans())
    if draw(st.booleans()):
        out["observedGeneration"] = draw(small)
    return out


def _optional(
    draw: st.DrawFn, target: dict[str, Any], key: str, value: st.SearchStrategy[Any]
) -> None:
    if draw(st.booleans()):
        target[key] = draw(value)


@st.composite
def widget_v1(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"configMapName": draw(names)}
    _optional(draw, spec, "replicas", small)
    obj = {"apiVersion": V1, "kind": "Widget", "metadata": draw(metadata()), "spec": spec}
    _optional(draw, obj, "status", status())
    return obj


@st.composite
def widget_v2(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"configMapRef": {"name": draw(names)}}
    _optional(draw, spec, "replicas", small)
    _optional(draw, spec, "maxSurge", small)
    obj = {"apiVersion": V2, "kind": "Widget", "metadata": draw(metadata()), "spec": spec}
    _optional(draw, obj, "status", status())
    return obj


any_widget = widget_v1() | widget_v2()


@given(any_widget, st.sampled_from(VERSIONS))
def test_any_version_to_any_version_and_back_loses_nothing(obj: dict[str, Any], to: str) -> None:
    original = copy.deepcopy(obj)
    there = CONVERTER.convert(obj, to)
    assert there["apiVersion"] == to
    assert there["metadata"]["name"] == obj["metadata"]["name"]
    back = CONVERTER.convert(there, obj["apiVersion"])
    assert back == original
    assert obj == original  # the input is not changed


@given(widget_v2())
def test_v2_only_fields_live_in_a_v1_annotation(obj: dict[str, Any]) -> None:
    v1 = CONVERTER.convert(obj, V1)
    surge = obj["spec"].get("maxSurge")
    annotations = v1["metadata"].get("annotations", {})
    assert annotations.get(MAX_SURGE_ANNOTATION) == (None if surge is None else str(surge))


@given(st.lists(any_widget, max_size=4), st.sampled_from(VERSIONS))
def test_a_review_converts_every_object_in_order(objs: list[dict[str, Any]], to: str) -> None:
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "u-1", "desiredAPIVersion": to, "objects": objs},
    }
    out = convert_review(review, {(GROUP, "Widget"): CONVERTER})
    assert out["apiVersion"] == "apiextensions.k8s.io/v1" and out["kind"] == "ConversionReview"
    resp = out["response"]
    assert resp["uid"] == "u-1" and resp["result"] == {"status": "Success"}
    assert [o["apiVersion"] for o in resp["convertedObjects"]] == [to] * len(objs)
    assert [o["metadata"] for o in resp["convertedObjects"]] == [
        CONVERTER.convert(o, to)["metadata"] for o in objs
    ]


def test_a_failure_carries_the_message_and_a_bug_is_counted() -> None:
    def review(objs: list[dict[str, Any]], to: str = V2) -> dict[str, Any]:
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "u", "desiredAPIVersion": to, "objects": objs},
        }

    panics = Counter()
    other = {"apiVersion": "other.dev/v1", "kind": "Thing", "metadata": {"name": "a"}}
    out = convert_review(review([other]), {(GROUP, "Widget"): CONVERTER}, panics=panics)
    assert out["response"]["result"]["status"] == "Failure"
    assert "no conversion registered for other.dev Thing" in out["response"]["result"]["message"]
    assert panics.value == 0
    broken = {"apiVersion": V1, "kind": "Widget", "metadata": {"name": "a"}, "spec": {}}
    out = convert_review(review([broken]), {(GROUP, "Widget"): CONVERTER}, panics=panics)
    assert out["response"]["uid"] == "u"
    assert out["response"]["result"]["status"] == "Failure"
    assert panics.value == 1
    out = convert_review(review([], f"{GROUP}/v9"), {(GROUP, "Widget"): CONVERTER})
    assert out["response"]["result"]["status"] == "Success"  # nothing to convert
