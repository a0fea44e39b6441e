from typing import Any

from hypothesis import given, strategies as st

from aimctl.objects import diff_paths, is_subset

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=15,
)


@given(json_value)
def test_everything_is_a_subset_of_itself(v: Any) -> None:
    assert is_subset(v, v)


@given(
    st.dictionaries(st.text(max_size=3), json_value, max_size=4),
    st.dictionaries(st.text(max_size=3), json_value, max_size=4),
)
def test_fields_added_by_others_do_not_count_as_drift(
    desired: dict[str, Any], extra: dict[str, Any]
) -> None:
    observed = {**extra, **desired}
    assert is_subset(desired, observed)


def test_server_defaults_are_ignored_but_changed_values_are_not() -> None:
    desired = {"spec": {"containers": [{"name": "redis", "image": "redis:7.2.4"}]}}
    observed = {
        "spec": {
            "containers": [
                {
                    "name": "redis",
                    "image": "redis:7.2.4",
                    "terminationMessagePath": "/dev/termination-log",
                }
            ]
        }
    }
    assert is_subset(desired, observed)
    observed["spec"]["containers"][0]["image"] = "redis:6"
    assert diff_paths(desired, observed) == [".spec.containers[redis].image"]


def test_named_lists_match_by_name_and_ignore_entries_others_added() -> None:
    desired = {"env": [{"name": "A", "value": "1"}]}
    assert is_subset(desired, {"env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]})
    assert diff_paths(desired, {"env": [{"name": "B", "value": "2"}]}) == [".env[A]"]


def test_plain_lists_are_compared_whole() -> None:
    assert not is_subset({"command": ["a", "b"]}, {"command": ["a"]})
    assert not is_subset({"command": ["a"]}, {"command": ["a", "b"]})
    assert is_subset({"command": ["a", "b"]}, {"command": ["a", "b"]})


def test_leaf_equal_allows_semantic_quantities() -> None:
    def eq(a: Any, b: Any) -> bool:
        return a == b or {a, b} == {"1024Mi", "1Gi"}

    assert is_subset({"storage": "1024Mi"}, {"storage": "1Gi"}, leaf_equal=eq)
    assert not is_subset({"storage": "1024Mi"}, {"storage": "1Gi"})


def test_missing_keys_are_drift_unless_desired_is_none() -> None:
    assert diff_paths({"a": 1, "b": None}, {}) == [".a"]


def test_empty_desired_values_match_omitted_fields() -> None:
    assert diff_paths({"a": 1, "b": None, "c": [], "d": {}}, {}) == [".a"]


def test_a_desired_false_zero_or_empty_string_is_not_an_omitted_field() -> None:
    # Pointer fields keep their zero values on the server: absent means "never written".
    for zero in (False, 0, ""):
        assert diff_paths({"spec": {"f": zero}}, {"spec": {}}) == [".spec.f"]
    assert is_subset({"spec": {"f": False}}, {"spec": {"f": False}})


def test_nulls_and_empty_collections_equal_absent() -> None:
    empties: tuple[Any, ...] = (None, [], {})
    for empty in empties:
        assert is_subset({"spec": {"f": empty}}, {"spec": {}})
