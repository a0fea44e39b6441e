from aimctl.objects import find_condition, is_condition_true, set_condition


def test_new_condition_gets_transition_time_and_generation() -> None:
    out = set_condition([], "Ready", "False", "Waiting", "pods", observed_generation=3, now="T1")
    assert out == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Waiting",
            "message": "pods",
            "lastTransitionTime": "T1",
            "observedGeneration": 3,
        }
    ]


def test_transition_time_moves_only_when_status_changes() -> None:
    c = set_condition([], "Ready", "False", "Waiting", "a", now="T1")
    c = set_condition(c, "Ready", "False", "StillWaiting", "b", now="T2")
    assert c[0]["lastTransitionTime"] == "T1"
    assert c[0]["reason"] == "StillWaiting"
    assert c[0]["message"] == "b"
    c = set_condition(c, "Ready", "True", "Ready", "ok", now="T3")
    assert c[0]["lastTransitionTime"] == "T3"


def test_other_conditions_keep_their_order_and_input_is_not_modified() -> None:
    original = set_condition([], "A", "True", "R", "m", now="T")
    original = set_condition(original, "B", "True", "R", "m", now="T")
    snapshot = [dict(c) for c in original]
    out = set_condition(original, "A", "False", "R2", "m2", now="T2")
    assert [c["type"] for c in out] == ["A", "B"]
    assert original == snapshot


def test_find_and_is_true() -> None:
    c = set_condition([], "Ready", "True", "R", "m")
    assert find_condition(c, "Ready") is not None
    assert find_condition(c, "Other") is None
    assert is_condition_true(c, "Ready")
    assert not is_condition_true(None, "Ready")
