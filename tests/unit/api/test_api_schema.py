"""pydantic JSON schema -> structural schema, and the offline structural-schema checks."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from aimctl.api.crd import SchemaError, structural_errors, to_structural


class Inner(BaseModel):
    """Inner doc."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{"rule": "a", "message": "m"}]}
    )

    size: int = Field(default=3, ge=1)


class Outer(BaseModel):
    required_text: str = Field(description="text")
    inner: Inner = Field(
        default_factory=Inner,
        description="overrides Inner's doc",
        json_schema_extra={
            "default": {},
            "x-kubernetes-validations": [{"rule": "b", "message": "n"}],
        },
    )
    maybe: Inner | None = None
    kind: Literal["x"] = "x"
    items: list[Inner] = Field(default_factory=list)
    limits: dict[str, int] | None = None
    positive: int = Field(default=1, gt=0)


def test_refs_are_inlined_and_optional_becomes_plain() -> None:
    schema = to_structural(Outer.model_json_schema())
    props = schema["properties"]
    assert "$defs" not in schema
    assert "title" not in schema
    assert props["inner"]["description"] == "overrides Inner's doc"
    assert props["inner"]["default"] == {}
    assert props["inner"]["properties"]["size"] == {"default": 3, "minimum": 1, "type": "integer"}
    assert props["maybe"]["description"] == "Inner doc."
    assert "anyOf" not in props["maybe"]
    assert "default" not in props["maybe"]
    assert props["items"]["items"]["type"] == "object"
    assert props["limits"] == {"additionalProperties": {"type": "integer"}, "type": "object"}
    assert schema["required"] == ["required_text"]


def test_cel_rules_of_model_and_field_add_up() -> None:
    rules = to_structural(Outer.model_json_schema())["properties"]["inner"]
    assert [r["rule"] for r in rules["x-kubernetes-validations"]] == ["a", "b"]


def test_const_becomes_enum_and_exclusive_minimum_becomes_openapi_v3() -> None:
    props = to_structural(Outer.model_json_schema())["properties"]
    assert props["kind"] == {"default": "x", "enum": ["x"], "type": "string"}
    assert props["positive"]["minimum"] == 0
    assert props["positive"]["exclusiveMinimum"] is True


def test_the_result_is_structural() -> None:
    assert structural_errors(to_structural(Outer.model_json_schema())) == []


class Union(BaseModel):
    value: int | str


class FreeForm(BaseModel):
    model_config = ConfigDict(extra="allow")


class Recursive(BaseModel):
    child: Recursive | None = None


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Union, "value: a union of 2 types has no structural form"),
        (FreeForm, "additionalProperties: free-form objects are not structural"),
        (Recursive, "recursive model Recursive has no structural form"),
    ],
)
def test_unstructural_models_are_refused_with_the_path(
    model: type[BaseModel], message: str
) -> None:
    with pytest.raises(SchemaError, match=message):
        to_structural(model.model_json_schema())


def test_unknown_keywords_are_refused() -> None:
    with pytest.raises(SchemaError, match="keyword 'discriminator'"):
        to_structural({"type": "object", "discriminator": {}})
    with pytest.raises(SchemaError, match="uniqueItems is not allowed"):
        to_structural({"type": "array", "items": {"type": "string"}, "uniqueItems": True})


OK: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


@pytest.mark.parametrize(
    ("schema", "error"),
    [
        (_obj(a={"description": "no type"}), "a: every node needs a type"),
        (_obj(a={"type": "string", "$ref": "#/x"}), "a: keyword '$ref' is not allowed"),
        (_obj(a={"type": "string", "nullable": True}), "a: keyword 'nullable' is not allowed"),
        (
            _obj(a={"x-kubernetes-int-or-string": True, "type": "string", **INT_OR_STRING}),
            "a: int-or-string must not set type",
        ),
        (
            _obj(a={"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}]}),
            "a: int-or-string needs anyOf [integer, string] exactly",
        ),
        (_obj(a={"type": "string", **INT_OR_STRING}), "a: anyOf is only allowed for int-or-string"),
        (
            _obj(
                a={"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}
            ),
            "a: properties and additionalProperties are mutually exclusive",
        ),
        (_obj(a={"type": "array"}), "a: arrays need items"),
        (
            _obj(a={"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "set"}),
            "a: a set needs scalar items",
        ),
        (
            _obj(
                a={
                    "type": "array",
                    "items": _obj(k={"type": "string"}),
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["k"],
                }
            ),
            "a: map key 'k' must be required or defaulted",
        ),
        (
            {"type": "object", "properties": {}, "required": ["missing"]},
            "required property 'missing' is not declared",
        ),
        (_obj(a={"type": "string", "default": 3}), "a default: 3 does not match type string"),
        (
            _obj(a={"type": "string", "enum": ["x"], "default": "y"}),
            "a default: 'y' is not one of ['x']",
        ),
        (
            _obj(a={**_obj(b={"type": "string"}), "default": {"c": 1}}),
            "a default: 'c' would be pruned",
        ),
        (
            _obj(a={**_obj(b={"type": "string"}), "required": ["b"], "default": {}}),
            "a default: required 'b' is missing after defaulting",
        ),
        (
            _obj(a={"type": "string", "x-kubernetes-validations": [{"message": "m"}]}),
            "a: a validation needs a rule",
        ),
        (
            _obj(metadata=_obj(labels={"type": "object"})),
            "metadata: only name and generateName may be restricted",
        ),
        ({"type": "string"}, "<root>: the root must be an object"),
    ],
)
def test_structural_violations_are_found(schema: dict[str, Any], error: str) -> None:
    errors = structural_errors(schema)
    assert any(error in e for e in errors), errors


def test_a_structural_schema_has_no_errors() -> None:
    assert structural_errors(OK) == []
