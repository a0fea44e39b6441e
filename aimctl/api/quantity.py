"""Kubernetes resource quantities: parse, compare and format them the way the API server does.

A quantity is a decimal number with an optional suffix: binary (``Ki`` ``Mi`` ``Gi`` ``Ti`` ``Pi``
``Ei``), decimal SI (``n`` ``u`` ``m`` ``k`` ``M`` ``G`` ``T`` ``P`` ``E``) or a decimal exponent
(``e3``, ``E-2``). This module mirrors ``k8s.io/apimachinery/pkg/api/resource`` (``ParseQuantity``
and ``Quantity.String``):

- :func:`parse_quantity` gives the exact value as a :class:`~decimal.Decimal`, rounded up (away from
  zero) to the nano unit as the server does, so ``"0.1n"`` is ``1e-9``.
- :func:`format_quantity` gives the canonical text the server would print: ``"1024Mi"`` is
  ``"1Gi"``, ``"1000"`` is ``"1k"``, ``"0.5"`` is ``"500m"``, ``"1536"`` stays ``"1536"``.
- :func:`compare` orders two quantities by value: ``compare("1Gi", "1024Mi") == 0``.

Integers are accepted wherever text is, because int-or-string fields may hold either.

Why not a library: PyPI has no maintained package for this. The synchronous ``kubernetes``
client has ``kubernetes.utils.parse_quantity``, but it only parses (no canonical form), accepts text
the server rejects (``"1.5e1.5"``) and does not round to nano; it is also a second, heavy client
we do not otherwise depend on.

Deviation from Go, on purpose: Go prints a decimal value whose exponent is beyond ``E`` (``1e21``)
with no suffix, which silently changes the value; here the mantissa grows instead (``1000E``).
"""

from __future__ import annotations

import decimal
import functools
import re
from decimal import Decimal
from enum import Enum

__all__ = [
    "Format",
    "InvalidQuantityError",
    "QUANTITY_PATTERN",
    "compare",
    "format_quantity",
    "is_quantity",
    "parse",
    "parse_quantity",
]

# The pattern controller-gen emits for resource.Quantity (and the API server's OpenAPI schema).
# It is slightly looser than the parser: it accepts a fractional exponent ("1e1.5"), Go does not.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

_GRAMMAR = re.compile(
    r"(?P<sign>[+-])?(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}  # powers of 1024
# Powers of ten.
_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {exponent: suffix for suffix, exponent in _BINARY_SUFFIXES.items()}
_NANO = Decimal("1e-9")
_MAX_BINARY = Decimal(2**63 - 1)  # Go caps binary-SI values at the largest int64


def _exact(digits: int) -> decimal.Context:
    """A context that never rounds a value of at most ``digits`` significant digits."""
    return decimal.Context(prec=digits + 64, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _round_up_to_nano(amount: Decimal) -> Decimal:
    """Non-zero values round up (away from zero) to the smallest unit the server represents."""
    exponent = amount.as_tuple().exponent
    if amount and isinstance(exponent, int) and exponent < -9:
        return amount.quantize(_NANO, rounding=decimal.ROUND_UP)
    return amount


class Format(Enum):
    """How a quantity prints: the family of the suffix it was written with."""

    BINARY_SI = "BinarySI"
    DECIMAL_SI = "DecimalSI"
    DECIMAL_EXPONENT = "DecimalExponent"


class InvalidQuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse(value: str | int) -> tuple[Decimal, Format]:
    """Parse ``value`` into its exact value and print format.

    Raises:
        InvalidQuantityError: ``value`` is not a quantity (the message quotes it, with examples).
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidQuantityError(f"quantity must be a string or an integer, not {value!r}")
    # Memoised by text: a reconcile parses the same few quantities ("1Gi", "500m") again and
    # again (validation, desired state, quota checks), ~3% of the operator's CPU in a
    # 1000-cache converge (py-spy). The result is immutable. Keyed by the text, not ``value``,
    # so that 1 and True-like ints never share an entry with anything but their own text.
    return _parse_text(str(value))


@functools.lru_cache(maxsize=1024)
def _parse_text(text: str) -> tuple[Decimal, Format]:
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise InvalidQuantityError(
            f"{text!r} is not a Kubernetes quantity (examples: 1Gi, 500Mi, 250m, 2, 1e3)"
        )
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    with decimal.localcontext(_exact(len(text))):
        if suffix in _BINARY_SUFFIXES:
            fmt = Format.BINARY_SI
            amount = number * (Decimal(1024) ** _BINARY_SUFFIXES[suffix])
        elif suffix in _DECIMAL_SUFFIXES:
            fmt = Format.DECIMAL_SI
            amount = number.scaleb(_DECIMAL_SUFFIXES[suffix])
        else:
            fmt = Format.DECIMAL_EXPONENT
            amount = number.scaleb(int(suffix[1:]))
        amount = _round_up_to_nano(amount)
        if fmt is Format.BINARY_SI:
            amount = min(amount, _MAX_BINARY)
            if 0 < amount < 1:
                fmt = Format.DECIMAL_SI
        if match["sign"] == "-":
            amount = -amount
    return amount, fmt


def parse_quantity(value: str | int) -> Decimal:
    """The exact value of a quantity: ``parse_quantity("1Gi") == Decimal(1073741824)``.

    Raises:
        InvalidQuantityError: ``value`` is not a quantity.
    """
    return parse(value)[0]


def is_quantity(value: object) -> bool:
    """Whether ``value`` (text or an integer) is a quantity the API server accepts."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    try:
        parse(value)
    except InvalidQuantityError:
        return False
    return True


def compare(a: str | int, b: str | int) -> int:
    """-1, 0 or 1 as quantity ``a`` is less than, equal to or greater than ``b``.

    Raises:
        InvalidQuantityError: either argument is not a quantity.
    """
    x, y = parse_quantity(a), parse_quantity(b)
    return (x > y) - (x < y)


def format_quantity(value: str | int | Decimal, fmt: Format | None = None) -> str:
    """The canonical text of a quantity, as ``Quantity.String()`` prints it.

    ``value`` is quantity text (its own suffix picks the format) or a number, printed in ``fmt``
    (default: decimal SI). Binary SI is used only when it is exact and the magnitude is at least
    1024; otherwise the value prints in decimal SI. No precision is lost, no fractional digits are
    printed, and the largest suffix that keeps the number whole is chosen.

    Raises:
        InvalidQuantityError: ``value`` is text that is not a quantity, or a non-finite number.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidQuantityError(f"{value} is not a finite number")
        with decimal.localcontext(_exact(len(value.as_tuple().digits))):
            amount, parsed_fmt = _round_up_to_nano(value), Format.DECIMAL_SI
    elif fmt is None and isinstance(value, str | int) and not isinstance(value, bool):
        # Memoised like ``parse``: the desired state formats the same few quantities on every
        # reconcile. Keyed by the text (``str(value)`` is what ``parse`` reads).
        return _format_text(str(value))
    else:
        amount, parsed_fmt = parse(value)
    return _format(amount, fmt or parsed_fmt)


@functools.lru_cache(maxsize=1024)
def _format_text(text: str) -> str:
    amount, fmt = parse(text)
    return _format(amount, fmt)


def _format(amount: Decimal, fmt: Format) -> str:
    if not amount:
        return "0"
    with decimal.localcontext(_exact(len(amount.as_tuple().digits))):
        if fmt is Format.BINARY_SI:
            if -1024 < amount < 1024 or amount != amount.to_integral_value():
                fmt = Format.DECIMAL_SI
            else:
                return _format_binary(int(amount))
        sign, digits, exponent = amount.as_tuple()
        mantissa = int("".join(map(str, digits)))
        exponent = int(exponent)
        while mantissa and mantissa % 10 == 0:
            mantissa //= 10
            exponent += 1
        # The exponent must be a multiple of three (and, for SI suffixes, at most E).
        while exponent % 3 or (fmt is Format.DECIMAL_SI and exponent > 18):
            mantissa *= 10
            exponent -= 1
        text = ("-" if sign else "") + str(mantissa)
        if fmt is Format.DECIMAL_EXPONENT:
            return text + (f"e{exponent}" if exponent else "")
        return text + _DECIMAL_BY_EXPONENT[exponent]


def _format_binary(value: int) -> str:
    magnitude, power = abs(value), 0
    while power < 6 and magnitude % 1024 == 0:
        magnitude //= 1024
        power += 1
    return ("-" if value < 0 else "") + str(magnitude) + _BINARY_BY_EXPONENT.get(power, "")
