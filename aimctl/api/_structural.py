"""Offline checks of the rules the API server applies to a CRD's schema.

These are the rules from "Specifying a structural schema", the list-type rules and the defaulting
rules of apiextensions.k8s.io/v1 that can be checked without a server (CEL compilation and cost
estimation cannot: the integration tests install the CRDs for that). Each error names the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ALLOWED_KEYWORDS", "structural_errors"]

ALLOWED_KEYWORDS = frozenset(
    {
        "description",
        "type",
        "format",
        "default",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "anyOf",
        "properties",
        "additionalProperties",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-preserve-unknown-fields",
    }
)
_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
_SCALARS = {"string", "integer", "number", "boolean"}
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_errors(schema: Mapping[str, Any]) -> list[str]:
    """Every violation found in ``schema`` (an openAPIV3Schema); empty when it is structural."""
    errors: list[str] = []
    _check(schema, "", errors, root=True)
    return errors


def _check(node: Mapping[str, Any], path: str, errors: list[str], *, root: bool = False) -> None:
    at = path or "<root>"
    for key in node:
        if key not in ALLOWED_KEYWORDS:
            errors.append(f"{at}: keyword {key!r} is not allowed")
    kind = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        if kind is not None:
            errors.append(f"{at}: int-or-string must not set type")
        if node.get("anyOf") != _INT_OR_STRING:
            errors.append(f"{at}: int-or-string needs anyOf [integer, string] exactly")
    elif "anyOf" in node:
        errors.append(f"{at}: anyOf is only allowed for int-or-string here")
    elif kind not in _TYPES:
        errors.append(f"{at}: every node needs a type, got {kind!r}")
    if root and kind != "object":
        errors.append("<root>: the root must be an object")
    if "properties" in node and "additionalProperties" in node:
        errors.append(f"{at}: properties and additionalProperties are mutually exclusive")
    if ("properties" in node or "additionalProperties" in node) and kind != "object":
        errors.append(f"{at}: properties need type object")
    if kind == "array" and "items" not in node:
        errors.append(f"{at}: arrays need items")
    if "items" in node and kind != "array":
        errors.append(f"{at}: items need type array")
    for rule in node.get("x-kubernetes-validations", []):
        if "rule" not in rule:
            errors.append(f"{at}: a validation needs a rule")
        for text in (rule.get("message", ""), rule.get("messageExpression", "")):
            if "\n" in text:
                errors.append(f"{at}: validation messages must be one line")
    for name in node.get("required", []):
        if name not in node.get("properties", {}):
            errors.append(f"{at}: required property {name!r} is not declared")
    _check_list_type(node, at, errors)
    if "default" in node:
        _check_value(node["default"], node, f"{at} default", errors)
    for name, sub in node.get("properties", {}).items():
        if (
            root
            and name == "metadata"
            and set(sub.get("properties", {})) - {"name", "generateName"}
        ):
            errors.append("metadata: only name and generateName may be restricted")
        _check(sub, f"{path}.{name}" if path else name, errors)
    if isinstance(node.get("additionalProperties"), Mapping):
        _check(node["additionalProperties"], f"{path}{{}}", errors)
    if isinstance(node.get("items"), Mapping):
        _check(node["items"], f"{path}[]", errors)


def _check_list_type(node: Mapping[str, Any], at: str, errors: list[str]) -> None:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        if "x-kubernetes-list-map-keys" in node:
            errors.append(f"{at}: list-map-keys need x-kubernetes-list-type: map")
        return
    items = node.get("items", {})
    if list_type == "set":
        if items.get("type") not in _SCALARS:
            errors.append(f"{at}: a set needs scalar items")
    elif list_type == "map":
        keys = node.get("x-kubernetes-list-map-keys", [])
        if not keys or items.get("type") != "object":
            errors.append(f"{at}: a map list needs object items and list-map-keys")
        for key in keys:
            prop = items.get("properties", {}).get(key)
            if prop is None or prop.get("type") not in _SCALARS:
                errors.append(f"{at}: map key {key!r} must be a scalar property")
            elif key not in items.get("required", []) and "default" not in prop:
                errors.append(f"{at}: map key {key!r} must be required or defaulted")
    elif list_type != "atomic":
        errors.append(f"{at}: unknown list type {list_type!r}")


def _check_value(value: Any, schema: Mapping[str, Any], at: str, errors: list[str]) -> None:
    """Whether a default fits its schema, after its nested defaults applied (as the server does)."""
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, int | str) and not isinstance(value, bool)
    else:
        ok = {
            "object": isinstance(value, dict),
            "array": isinstance(value, list),
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
        }.get(str(kind), False)
    if not ok:
        errors.append(f"{at}: {value!r} does not match type {kind}")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in value:
            if name not in props and "additionalProperties" not in schema:
                errors.append(f"{at}: {name!r} would be pruned")
        filled = {k: v["default"] for k, v in props.items() if "default" in v} | value
        for name in schema.get("required", []):
            if name not in filled:
                errors.append(f"{at}: required {name!r} is missing after defaulting")
        for name, sub in filled.items():
            if name in props:
                _check_value(sub, props[name], f"{at}.{name}", errors)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{at}: fewer than minItems")
        for item in value:
            _check_value(item, schema.get("items", {}), f"{at}[]", errors)
