"""The pieces every AIM kind shares: the model base, object metadata, conditions, the group.

Parsing is lenient and writing is strict: models ignore fields they do not know (an object read
from a newer server still parses), while the generated CRD rejects unknown fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
)
from pydantic.alias_generators import to_camel

from aimctl.api._resource import ResourceInfo

# pydantic's json_schema_extra type (pydantic.config does not export the aliases).
JsonValue = int | float | str | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonDict = dict[str, JsonValue]

__all__ = [
    "API_VERSION",
    "DNS1035_LABEL",
    "GROUP",
    "VERSION",
    "ApiModel",
    "Condition",
    "ConditionStatus",
    "CustomResource",
    "ObjectMeta",
    "cel_rules",
]

GROUP = "aim.silogen.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A DNS-1035 label (without its 63-character bound): what a Service name must be. Both kinds'
# names must be one, because each names a Service after itself (``<cache>-svc``, ``<service>``).
DNS1035_LABEL = "^[a-z]([-a-z0-9]*[a-z0-9])?$"


def cel_rules(*rules: Mapping[str, str]) -> JsonDict:
    """A ``json_schema_extra`` carrying CEL rules (``x-kubernetes-validations``).

    Each rule has ``rule`` and ``message``, optionally ``messageExpression`` and ``fieldPath``.
    """
    entries: list[JsonValue] = []
    for rule in rules:
        entry: JsonDict = dict(rule.items())
        entries.append(entry)
    return {"x-kubernetes-validations": entries}


class ApiModel(BaseModel):
    """Base of every AIM model: camelCase on the wire, snake_case in Python, unknown fields
    ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        use_attribute_docstrings=False,
    )


class ObjectMeta(BaseModel):
    """Standard object metadata. Fields not listed here are kept as they are (round-trip safe)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
    )

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[dict[str, Any]] | None = None
    finalizers: list[str] | None = None


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


_CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)


def _no_default(schema: dict[str, Any]) -> None:
    """Keep a Python default out of the CRD (the API server would apply it)."""
    schema.pop("default", None)


class Condition(ApiModel):
    """One aspect of the object's current state (metav1.Condition)."""

    model_config = ConfigDict(
        json_schema_extra={
            "required": ["lastTransitionTime", "message", "reason", "status", "type"]
        }
    )

    type: str = Field(
        description="Type of condition in CamelCase, for example Ready or KVCacheReady.",
        max_length=316,
        pattern=_CONDITION_TYPE_PATTERN,
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: str = Field(
        description="A programmatic identifier (CamelCase) for the last transition.",
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(
        default="",
        description="A human readable message with details about the transition.",
        max_length=32768,
        json_schema_extra=_no_default,  # required on the wire, as in metav1.Condition
    )
    last_transition_time: str = Field(
        description="When the condition last changed from one status to another (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None,
        description="The .metadata.generation that the condition was set from.",
        ge=0,
        json_schema_extra={"format": "int64"},
    )


# A list of conditions is a map keyed by type (listType=map, listMapKey=type).
CONDITIONS_LIST_SCHEMA: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


class CustomResource(ApiModel):
    """A whole object of an AIM kind, as read from or written to the API server.

    ``Model.model_validate(obj)`` parses a decoded object; ``obj.model_dump(by_alias=True,
    exclude_none=True, mode="json")`` gives back a JSON-ready dict.
    """

    resource: ClassVar[ResourceInfo]

    api_version: str = Field(default=API_VERSION, description="The object's apiVersion.")
    kind: str = Field(default="", description="The object's kind.")
    metadata: Annotated[ObjectMeta, WithJsonSchema({"type": "object"})] = Field(
        default_factory=ObjectMeta, description="Standard metadata."
    )

    def model_post_init(self, context: Any, /) -> None:
        if not self.kind:
            self.kind = self.resource.kind

    @model_serializer(mode="wrap")
    def _always_typed(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        """apiVersion and kind are always written, even with ``exclude_unset``/``_defaults``."""
        data: dict[str, Any] = handler(self)
        by_alias = info.by_alias is not False
        data.setdefault("apiVersion" if by_alias else "api_version", self.api_version)
        data.setdefault("kind", self.kind)
        return data

    @property
    def name(self) -> str:
        """``metadata.name`` ("" when unset)."""
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        """``metadata.namespace`` ("" when unset)."""
        return self.metadata.namespace or ""
