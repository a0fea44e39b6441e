"""The CPU shortcuts on the operator's hot paths answer exactly what the plain code answers.

Each shortcut (docs/benchmarks.md, converge) is checked against the slow path it replaces, on
seeded random inputs: the in-sync walk of ``diff_paths``, the orjson encoding of apply bodies,
the memoised quantities and kinds.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from aimctl.api import quantity
from aimctl.client import GVK
from aimctl.client._rest import _YAML_UNSAFE, _default, _dumps_yaml_safe
from aimctl.informers import freeze
from aimctl.objects._subset import _same, _walk, diff_paths, is_subset
from aimctl.reconcilers._common import leaf_equal

_LEAVES: list[Any] = ["a", "1Gi", "1024Mi", 0, False, None, "", [], {}, 1, True, 0.0, 1.0, ()]


def _value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 3 or r < 0.35:
        return rng.choice(_LEAVES)
    if r < 0.6:
        return {rng.choice("abcn"): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if r < 0.8:
        return [
            {"name": rng.choice("xyz"), rng.choice("ab"): _value(rng, depth + 1)}
            for _ in range(rng.randint(0, 3))
        ]
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def _mutated(rng: random.Random, v: Any) -> Any:
    if isinstance(v, dict) and v and rng.random() < 0.7:
        v = dict(v)
        k = rng.choice(list(v))
        if rng.random() < 0.3:
            del v[k]
        else:
            v[k] = _mutated(rng, v[k])
        if rng.random() < 0.3:
            v["extra"] = 1
        return v
    if isinstance(v, list) and v and rng.random() < 0.7:
        v = list(v)
        i = rng.randrange(len(v))
        v[i] = _mutated(rng, v[i])
        return v
    return _value(rng, 2) if rng.random() < 0.5 else v


def _strict(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


@pytest.mark.parametrize("seed", range(3))
def test_the_in_sync_shortcut_agrees_with_the_path_walk(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(3000):
        desired = _value(rng)
        observed = _mutated(rng, copy.deepcopy(desired)) if rng.random() < 0.8 else _value(rng)
        if rng.random() < 0.3 and isinstance(observed, dict | list):
            observed = freeze({"x": observed})["x"]  # what the cache hands out
        for eq in (leaf_equal, _strict):
            out: list[str] = []
            try:
                _walk(desired, observed, "", eq, out, 20)
            except (TypeError, KeyError):
                continue  # malformed named lists: diff_paths raises as before
            assert _same(desired, observed, eq) is (not out)
            assert is_subset(desired, observed, leaf_equal=eq) is (not out)
            assert diff_paths(desired, observed, leaf_equal=eq) == out


def _old_yaml_safe(body: Any) -> bytes:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_default)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


def test_apply_bodies_encode_as_json_dumps_did() -> None:
    rng = random.Random(7)
    wide = [chr(c) for c in [*range(0x250), 0x85, 0x2028, 0xFFFD, 0xFFFE, 0xFFFF, 0x1F600]]
    ascii_only = [chr(c) for c in range(0x80)]  # the usual body: its own fast path
    chars = wide

    def text() -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))

    def body(depth: int = 0) -> Any:
        r = rng.random()
        if depth > 3 or r < 0.3:
            leaves: list[Callable[[], Any]] = [
                text,
                lambda: rng.randint(-(10**20), 10**20),
                lambda: None,
            ]
            return rng.choice(leaves)()
        if r < 0.7:
            return {text(): body(depth + 1) for _ in range(rng.randint(0, 4))}
        return [body(depth + 1) for _ in range(rng.randint(0, 4))]

    for i in range(10000):
        chars = wide if i % 2 else ascii_only
        b = body()
        try:
            want: Any = _old_yaml_safe(b)
        except Exception as e:
            want = type(e)
        try:
            got: Any = _dumps_yaml_safe(b)
        except Exception as e:
            got = type(e)
        assert got == want
    # NaN: orjson would write null; the slow path keeps json.dumps's answer.
    assert _dumps_yaml_safe({"x": float("nan")}) == b'{"x":NaN}'


def test_memoised_quantities_answer_as_before() -> None:
    assert quantity.parse(1) == quantity.parse("1")
    assert quantity.format_quantity("1024Mi") == "1Gi"
    assert quantity.format_quantity(1000) == "1k"
    assert quantity.format_quantity("1024Mi", quantity.Format.DECIMAL_SI) == "1073741824"
    for bad in (True, 1.5, "1.5e1.5"):
        with pytest.raises(quantity.InvalidQuantityError):
            quantity.format_quantity(bad)  # type: ignore[arg-type]
        with pytest.raises(quantity.InvalidQuantityError):
            quantity.parse(bad)  # type: ignore[arg-type]


def test_gvks_from_api_versions_are_shared_and_equal() -> None:
    a = GVK.from_api_version("apps/v1", "StatefulSet")
    assert a is GVK.from_api_version("apps/v1", "StatefulSet")
    assert a == GVK("apps", "v1", "StatefulSet") and hash(a) == hash(
        GVK("apps", "v1", "StatefulSet")
    )
    with pytest.raises(ValueError):
        GVK.from_api_version("/v1", "X")
