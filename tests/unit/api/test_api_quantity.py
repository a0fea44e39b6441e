"""aimctl.api.quantity: the API server's parsing, rounding, canonical form and ordering."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from aimctl.api import quantity
from aimctl.api.quantity import (
    QUANTITY_PATTERN,
    Format,
    InvalidQuantityError,
    compare,
    format_quantity,
    is_quantity,
    parse,
    parse_quantity,
)

# (text, exact value, canonical text as Quantity.String() prints it)
CANONICAL = [
    ("0", Decimal(0), "0"),
    ("0Gi", Decimal(0), "0"),
    ("-0", Decimal(0), "0"),
    ("1", Decimal(1), "1"),
    ("1Ki", Decimal(1024), "1Ki"),
    ("1024", Decimal(1024), "1024"),
    ("1024Ki", Decimal(1024**2), "1Mi"),
    ("1024Mi", Decimal(1024**3), "1Gi"),
    ("1Gi", Decimal(1073741824), "1Gi"),
    ("1.5Gi", Decimal(1610612736), "1536Mi"),
    ("0.5Gi", Decimal(536870912), "512Mi"),
    ("0.5Ki", Decimal(512), "512"),
    ("1536", Decimal(1536), "1536"),
    ("1000", Decimal(1000), "1k"),
    ("1000000", Decimal(10**6), "1M"),
    ("1500", Decimal(1500), "1500"),
    ("0.5", Decimal("0.5"), "500m"),
    ("1.5", Decimal("1.5"), "1500m"),
    (".5", Decimal("0.5"), "500m"),
    ("5.", Decimal(5), "5"),
    ("+5", Decimal(5), "5"),
    ("100m", Decimal("0.1"), "100m"),
    ("1000m", Decimal(1), "1"),
    ("0.1m", Decimal("0.0001"), "100u"),
    ("1n", Decimal("1e-9"), "1n"),
    ("0.1n", Decimal("1e-9"), "1n"),  # rounded up to the smallest unit
    ("-0.1n", Decimal("-1e-9"), "-1n"),  # away from zero
    ("1G", Decimal(10**9), "1G"),
    ("1E", Decimal(10**18), "1E"),
    ("10E", Decimal(10**19), "10E"),
    ("1e3", Decimal(1000), "1e3"),
    ("1E3", Decimal(1000), "1e3"),
    ("1.5e3", Decimal(1500), "1500"),
    ("12e6", Decimal(12 * 10**6), "12e6"),
    ("1e-3", Decimal("0.001"), "1e-3"),
    ("-1Gi", Decimal(-1073741824), "-1Gi"),
    ("-0.5", Decimal("-0.5"), "-500m"),
    ("8Ei", Decimal(2**63 - 1), "9223372036854775807"),  # binary values cap at int64
    (1073741824, Decimal(1073741824), "1073741824"),
    (0, Decimal(0), "0"),
]


@pytest.mark.parametrize(("text", "value", "canonical"), CANONICAL)
def test_parse_and_format_match_the_api_server(
    text: str | int, value: Decimal, canonical: str
) -> None:
    assert parse_quantity(text) == value
    assert format_quantity(text) == canonical
    assert is_quantity(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Gi",
        "ten-gigs",
        "1 Gi",
        "1gi",
        "1Gb",
        "1e1.5",
        "1.2.3",
        "--1",
        "1Ki2",
        "0x10",
        " 1",
        "1e",
    ],
)
def test_invalid_text_is_rejected_with_examples(text: str) -> None:
    assert not is_quantity(text)
    with pytest.raises(InvalidQuantityError, match=r"not a Kubernetes quantity \(examples: 1Gi"):
        parse_quantity(text)


@pytest.mark.parametrize("value", [True, 1.5, None, b"1Gi", Decimal(1)])
def test_only_text_and_integers_are_quantities(value: object) -> None:
    assert not is_quantity(value)
    with pytest.raises(InvalidQuantityError):
        parse(value)  # type: ignore[arg-type]


def test_format_of_a_number_picks_the_format() -> None:
    assert format_quantity(Decimal(1073741824)) == "1073741824"
    assert format_quantity(Decimal(1073741824), Format.BINARY_SI) == "1Gi"
    assert format_quantity(Decimal(1000), Format.DECIMAL_EXPONENT) == "1e3"
    assert format_quantity(Decimal("0.25"), Format.BINARY_SI) == "250m"  # inexact in binary
    with pytest.raises(InvalidQuantityError):
        format_quantity(Decimal("NaN"))


def test_compare_orders_by_value_across_suffixes() -> None:
    assert compare("1Gi", "1024Mi") == 0
    assert compare("1G", "1Gi") == -1
    assert compare("10Gi", "5Gi") == 1
    assert compare(1073741824, "1Gi") == 0
    assert compare("500m", "0.5") == 0


def test_the_parser_accepts_only_what_the_crd_pattern_accepts() -> None:
    # The CRD pattern is looser in one place only: fractional exponents.
    assert re.fullmatch(QUANTITY_PATTERN.strip("^$"), "1e1.5")
    assert not is_quantity("1e1.5")


def test_module_exports() -> None:
    assert sorted(quantity.__all__) == quantity.__all__


# -- properties -------------------------------------------------------------------------------

_SUFFIXES = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


@st.composite
def quantities(draw: st.DrawFn) -> str:
    """Quantity text from the grammar: sign, number, suffix or decimal exponent."""
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole = draw(st.text("0123456789", min_size=0, max_size=8))
    frac = draw(st.none() | st.text("0123456789", min_size=0, max_size=6))
    if not whole and not frac:
        whole = "0"
    number = whole + ("" if frac is None else "." + frac)
    suffix = draw(
        st.sampled_from(_SUFFIXES)
        | st.builds(
            lambda e, s, n: f"{e}{s}{n}",
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.integers(0, 30),
        )
    )
    return sign + number + suffix


@given(quantities())
def test_generated_text_parses_and_matches_the_crd_pattern(text: str) -> None:
    assert re.fullmatch(QUANTITY_PATTERN, text)
    assert is_quantity(text)


@given(quantities())
def test_canonical_text_round_trips_to_the_same_value(text: str) -> None:
    canonical = format_quantity(text)
    assert parse_quantity(canonical) == parse_quantity(text)
    assert format_quantity(canonical) == canonical  # canonical form is a fixed point
    assert re.fullmatch(QUANTITY_PATTERN, canonical)


@given(quantities(), quantities())
def test_compare_agrees_with_the_exact_values(a: str, b: str) -> None:
    x, y = parse_quantity(a), parse_quantity(b)
    assert compare(a, b) == (x > y) - (x < y)
    assert compare(a, b) == -compare(b, a)


@given(st.lists(quantities(), min_size=2, max_size=8))
def test_sorting_by_compare_is_sorting_by_value(texts: list[str]) -> None:
    import functools

    by_compare = sorted(texts, key=functools.cmp_to_key(compare))
    values = [parse_quantity(t) for t in by_compare]
    assert values == sorted(values)


@given(st.integers(-(2**70), 2**70))
def test_integers_format_without_loss(n: int) -> None:
    assert parse_quantity(n) == n
    for fmt in (Format.DECIMAL_SI, Format.DECIMAL_EXPONENT):
        assert parse_quantity(format_quantity(Decimal(n), fmt)) == n
    if abs(n) < 2**63:  # like Go, binary quantities beyond int64 parse as the int64 maximum
        assert parse_quantity(format_quantity(Decimal(n), Format.BINARY_SI)) == n
