"""pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema.

pydantic emits JSON Schema 2020-12: shared models sit in ``$defs`` behind ``$ref``, ``Optional[X]``
is ``anyOf: [X, {type: null}]``, every property has a ``title``, a single Literal is a ``const``.
A CRD needs a *structural* schema instead: every node typed in place, no references, logical
junctors (``anyOf``...) only around value validations. This module rewrites one into the other:

- ``$ref`` is inlined; keys written next to the reference (a field's description or default)
  override the referenced model's, and CEL rules (``x-kubernetes-validations``) add up;
- ``anyOf: [X, {type: null}]`` becomes X: "absent" already means unset, so no ``nullable``;
- the int-or-string union (``x-kubernetes-int-or-string``) is kept as Kubernetes spells it;
- ``title`` and ``default: null`` are dropped, ``const`` becomes a one-value ``enum``, and
  2020-12's numeric ``exclusiveMinimum`` becomes OpenAPI v3.0's ``minimum`` + boolean;
- ``required`` is sorted, so the output does not depend on field order.

Anything else that has no structural form (a real union, ``additionalProperties: true``, an
unknown keyword) raises :class:`SchemaError` naming the path, rather than producing a CRD the API
server would reject.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aimctl.api._structural import ALLOWED_KEYWORDS

__all__ = ["SchemaError", "to_structural"]

Schema = dict[str, Any]

# Keywords of apiextensions.k8s.io/v1 JSONSchemaProps that may pass through unchanged: every
# allowed one except those _convert rewrites.
_PASS_THROUGH = ALLOWED_KEYWORDS - {
    "default",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "required",
    "items",
    "anyOf",
    "properties",
    "additionalProperties",
}
_DROPPED = frozenset({"title", "$defs", "examples"})
_NULL = {"type": "null"}


class SchemaError(ValueError):
    """The JSON schema has no structural equivalent; the message names the path."""


def to_structural(schema: Mapping[str, Any]) -> Schema:
    """Convert a pydantic ``model_json_schema()`` result into a structural schema."""
    defs = schema.get("$defs", {})
    return _convert(schema, defs, "", ())


def _convert(
    node: Mapping[str, Any], defs: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> Schema:
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        if name in seen:
            raise SchemaError(f"{path or '<root>'}: recursive model {name} has no structural form")
        if name not in defs:
            raise SchemaError(f"{path or '<root>'}: unresolved reference {name}")
        base = _convert(defs[name], defs, path, (*seen, name))
        return _merge(base, _convert(node, defs, path, seen))
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [b for b in node.pop("anyOf") if b != _NULL]
        if len(branches) != 1:
            raise SchemaError(
                f"{path or '<root>'}: a union of {len(branches)} types has no structural form; "
                "use one type (or an int-or-string quantity)"
            )
        base = _convert(branches[0], defs, path, seen)
        return _merge(base, _convert(node, defs, path, seen))
    out: Schema = {}
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key in _DROPPED:
            continue
        if key == "default":
            if value is not None:
                out["default"] = copy.deepcopy(value)
        elif key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum" or key == "exclusiveMaximum":
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out[key] = {
                name: _convert(sub, defs, f"{path}.{name}" if path else name, seen)
                for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]", seen)
        elif key == "additionalProperties":
            if value is True:
                raise SchemaError(f"{where}: free-form objects are not structural")
            if isinstance(value, Mapping):
                out[key] = _convert(value, defs, f"{path}{{}}", seen)
        elif key == "required":
            out[key] = sorted(value)
        elif key == "anyOf":  # the int-or-string union: only the two type branches remain
            out[key] = [{"type": branch["type"]} for branch in value]
        elif key == "uniqueItems":
            if value:
                raise SchemaError(
                    f"{where}: uniqueItems is not allowed; use x-kubernetes-list-type: set"
                )
        elif key in _PASS_THROUGH:
            out[key] = copy.deepcopy(value)
        else:
            raise SchemaError(f"{where}: keyword {key!r} has no place in a CRD schema")
    return out


def _merge(base: Schema, over: Schema) -> Schema:
    """``over``'s keys win, except CEL rules, which are kept from both (``base``'s first)."""
    merged = {**base, **over}
    rules = base.get("x-kubernetes-validations", []) + over.get("x-kubernetes-validations", [])
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged
