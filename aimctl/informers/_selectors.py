r"""Label and field selectors: parse, match, and print them as the API server expects.

Owns the label-selector grammar of ``k8s.io/apimachinery/pkg/labels`` (equality ``=``/``==``/
``!=``, set-based ``in``/``notin``, existence ``key``/``!key``, and ``gt``/``lt`` as ``>``/``<``)
plus the ``metav1.LabelSelector`` object form (``matchLabels`` + ``matchExpressions``), and the
field-selector grammar of ``k8s.io/apimachinery/pkg/fields`` (``field=value``, ``field==value``,
``field!=value`` joined by commas; ``\\``, ``\,`` and ``\=`` escape a value's characters).
Used by the store (``list(label_selector=...)``) and the factory (informer identity and the
``labelSelector`` / ``fieldSelector`` query parameters). Field selectors are evaluated by the
API server only (which fields a kind supports is the server's business), so they have no
``matches``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "FieldSelectorLike",
    "LabelSelector",
    "Requirement",
    "SelectorLike",
    "to_field_selector",
    "to_selector",
]

Operator = Literal["=", "!=", "in", "notin", "exists", "!", ">", "<"]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?"
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(\s*([^()]*)\)$")
_CMP_RE = re.compile(rf"^({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})$")
_EXISTS_RE = re.compile(rf"^(!?)\s*({_KEY})$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One clause: ``key op values``.

    ``!=`` and ``notin`` match objects without the key (as Kubernetes does); ``>``/``<``
    compare integers and never match a missing or non-integer label.
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        value = labels.get(self.key)
        if op == "=" or op == "in":
            return value is not None and value in self.values
        if op == "!=" or op == "notin":
            return value is None or value not in self.values
        if op == "exists":
            return value is not None
        if op == "!":
            return value is None
        try:
            number = int(value) if value is not None else None
            bound = int(self.values[0])
        except ValueError:
            return False
        if number is None:
            return False
        return number > bound if op == ">" else number < bound

    def __str__(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return f"!{self.key}"
        if op in ("in", "notin"):
            return f"{self.key} {op} ({','.join(self.values)})"
        return f"{self.key}{op}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything.

    ``str(selector)`` is canonical (requirements sorted by key, set values sorted), so equal
    selectors print equally: the factory uses it as part of an informer's identity.
    """

    requirements: tuple[Requirement, ...] = ()

    @staticmethod
    def parse(text: str) -> LabelSelector:
        """Parse ``"app=web,tier in (a,b),!legacy"``.

        Raises:
            ValueError: the text is not a valid selector.
        """
        return _parse(text)

    @staticmethod
    def from_labels(labels: Mapping[str, str]) -> LabelSelector:
        """Equality on every pair (``matchLabels``)."""
        return _canonical(Requirement(k, "=", (v,)) for k, v in labels.items())

    @staticmethod
    def from_api(selector: Mapping[str, Any]) -> LabelSelector:
        """From a ``metav1.LabelSelector`` object (``matchLabels`` and ``matchExpressions``).

        Raises:
            ValueError: an unknown operator or a malformed expression.
        """
        reqs: list[Requirement] = [
            Requirement(str(k), "=", (str(v),))
            for k, v in (selector.get("matchLabels") or {}).items()
        ]
        ops: dict[str, Operator] = {
            "In": "in",
            "NotIn": "notin",
            "Exists": "exists",
            "DoesNotExist": "!",
        }
        for expr in selector.get("matchExpressions") or ():
            op = ops.get(str(expr.get("operator")))
            if op is None:
                raise ValueError(f"unknown matchExpressions operator {expr.get('operator')!r}")
            values = tuple(sorted(str(v) for v in expr.get("values") or ()))
            if (op in ("in", "notin")) != bool(values):
                raise ValueError(f"operator {expr.get('operator')} with values {values}")
            reqs.append(Requirement(str(expr["key"]), op, values))
        return _canonical(reqs)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels (None: no labels) is selected."""
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


SelectorLike = str | Mapping[str, str] | LabelSelector
"""What APIs accept: a selector string, a ``{key: value}`` equality map, or a parsed selector."""


def to_selector(selector: SelectorLike | None) -> LabelSelector | None:
    """Normalise any accepted form; None and empty selectors become None (everything)."""
    if selector is None:
        return None
    if isinstance(selector, LabelSelector):
        parsed = selector
    elif isinstance(selector, str):
        parsed = _parse(selector)
    else:
        parsed = LabelSelector.from_labels(selector)
    return None if parsed.empty else parsed


def _canonical(reqs: Any) -> LabelSelector:
    return LabelSelector(tuple(sorted(reqs, key=lambda r: (r.key, r.operator, r.values))))


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in selector {text!r}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '(' in selector {text!r}")
    parts.append(text[start:])
    return parts


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> LabelSelector:
    reqs: list[Requirement] = []
    if not text.strip():
        return LabelSelector()
    for raw in _split(text):
        clause = raw.strip()
        if not clause:
            raise ValueError(f"empty clause in selector {text!r}")
        if m := _SET_RE.match(clause):
            if not m.group(3).strip():
                raise ValueError(f"{clause!r}: a set needs at least one value")
            values = tuple(sorted({v.strip() for v in m.group(3).split(",")}))
            if not all(_VALUE_RE.match(v) for v in values):
                raise ValueError(f"invalid value in {clause!r}")
            op: Operator = "in" if m.group(2) == "in" else "notin"
            reqs.append(Requirement(m.group(1), op, values))
        elif m := _CMP_RE.match(clause):
            sym = m.group(2)
            cmp_op: Operator = "=" if sym in ("=", "==") else sym  # type: ignore[assignment]
            if cmp_op in (">", "<") and not re.fullmatch(r"-?\d+", m.group(3)):
                raise ValueError(f"{clause!r}: {sym} needs an integer")
            reqs.append(Requirement(m.group(1), cmp_op, (m.group(3),)))
        elif m := _EXISTS_RE.match(clause):
            reqs.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
        else:
            raise ValueError(f"invalid selector clause {clause!r} in {text!r}")
    return _canonical(reqs)


# -- field selectors ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """One clause of a field selector: ``field=value`` or ``field!=value``."""

    field: str
    operator: Literal["=", "!="]
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{_escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of field requirements, evaluated by the API server (``fieldSelector``).

    ``str(selector)`` is canonical (requirements sorted), so equal selectors print equally:
    the factory uses it as part of an informer's identity. Which fields a kind supports is
    the server's business (every kind has ``metadata.name`` and ``metadata.namespace``;
    e.g. Secrets add ``type``, Pods ``spec.nodeName`` and ``status.phase``); an unsupported
    one makes the list fail with ``BadRequest``.
    """

    requirements: tuple[FieldRequirement, ...] = ()

    @staticmethod
    def parse(text: str) -> FieldSelector:
        """Parse ``"metadata.name=x,type!=kubernetes.io/tls"``.

        Raises:
            ValueError: a clause without an operator, an empty field, or a bad escape.
        """
        return _parse_fields(text)

    @staticmethod
    def from_fields(fields: Mapping[str, str]) -> FieldSelector:
        """Equality on every pair (apimachinery's ``fields.SelectorFromSet``)."""
        return _canonical_fields(FieldRequirement(k, "=", v) for k, v in fields.items())

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


FieldSelectorLike = str | Mapping[str, str] | FieldSelector
"""What APIs accept: a field selector string, a ``{field: value}`` map, or a parsed one."""


def to_field_selector(selector: FieldSelectorLike | None) -> FieldSelector | None:
    """Normalise any accepted form; None and empty selectors become None (everything).

    Raises:
        ValueError: a malformed selector string.
    """
    if selector is None:
        return None
    if isinstance(selector, FieldSelector):
        parsed = selector
    elif isinstance(selector, str):
        parsed = _parse_fields(selector)
    else:
        parsed = FieldSelector.from_fields(selector)
    return None if parsed.empty else parsed


def _canonical_fields(reqs: Any) -> FieldSelector:
    return FieldSelector(tuple(sorted(reqs, key=lambda r: (r.field, r.operator, r.value))))


def _escape_field_value(value: str) -> str:
    # apimachinery fields.EscapeValue: backslash first, then the two separators.
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_unescaped(text: str) -> list[str]:
    """Split on commas not preceded by an escaping backslash (fields.splitTerms)."""
    parts: list[str] = []
    start = 0
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _unescape_field_value(value: str, clause: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise ValueError(f"invalid escape sequence \\{ch} in field selector {clause!r}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise ValueError(f"unescaped {ch!r} in the value of field selector {clause!r}")
        else:
            out.append(ch)
    if escaped:
        raise ValueError(f"field selector {clause!r} ends in an unfinished escape")
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _parse_fields(text: str) -> FieldSelector:
    if not text.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for clause in _split_unescaped(text):
        if not clause.strip():
            continue  # as fields.parseSelector: empty terms are skipped
        # Values are kept exactly (whitespace included); only the field is trimmed.
        # The first operator wins, as in fields.splitTerm (values escape their own '=').
        for i, ch in enumerate(clause):
            if clause.startswith("!=", i):
                field, op, value = clause[:i], "!=", clause[i + 2 :]
                break
            if clause.startswith("==", i):
                field, op, value = clause[:i], "=", clause[i + 2 :]
                break
            if ch == "=":
                field, op, value = clause[:i], "=", clause[i + 1 :]
                break
        else:
            raise ValueError(f"invalid field selector clause {clause!r} in {text!r}")
        field = field.strip()
        if not field:
            raise ValueError(f"field selector clause {clause!r} has no field")
        reqs.append(
            FieldRequirement(
                field, "=" if op == "=" else "!=", _unescape_field_value(value, clause)
            )
        )
    return _canonical_fields(reqs)
