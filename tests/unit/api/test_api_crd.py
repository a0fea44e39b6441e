"""The generated CRDs: identity, printer columns, structural schema, defaults, committed files."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from aimctl.api.crd import crd_filename, generate_crds, render_crd, structural_errors
from aimctl.api.v1alpha1 import AIMKVCache, AIMService
from aimctl.cli._manifests import manifests, stale_differences

REPO = Path(__file__).resolve().parents[3]
CRDS_DIR = REPO / "manifests" / "crds"


def _crd(plural: str) -> dict[str, Any]:
    (crd,) = [c for c in generate_crds() if c["spec"]["names"]["plural"] == plural]
    return crd


def _schema(plural: str) -> dict[str, Any]:
    schema: dict[str, Any] = _crd(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """What the API server's defaulting does to ``value`` (objects and lists only)."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(value[name], sub)
    if isinstance(value, list) and "items" in schema:
        value = [apply_defaults(item, schema["items"]) for item in value]
    return value


def test_crd_identity_matches_the_original_operator() -> None:
    crd = _crd("aimkvcaches")
    assert crd["metadata"]["name"] == "aimkvcaches.aim.silogen.ai"
    assert crd["spec"]["group"] == "aim.silogen.ai"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": "AIMKVCache",
        "listKind": "AIMKVCacheList",
        "plural": "aimkvcaches",
        "singular": "aimkvcache",
        "shortNames": ["aimkvc"],
        "categories": ["aim", "all"],
    }
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    svc = _crd("aimservices")["spec"]["names"]
    assert (svc["kind"], svc["shortNames"], svc["categories"]) == (
        "AIMService",
        ["aimsvc"],
        ["aim", "all"],
    )


def _columns(plural: str) -> list[tuple[str, str, int]]:
    version = _crd(plural)["spec"]["versions"][0]
    return [
        (c["name"], c["jsonPath"], c.get("priority", 0))
        for c in version["additionalPrinterColumns"]
    ]


def test_printer_columns_are_the_guides() -> None:
    assert _columns("aimkvcaches") == [
        ("Type", ".spec.kvCacheType", 0),
        ("Status", ".status.status", 0),
        ("Ready", ".status.readyReplicas", 0),
        ("Endpoint", ".status.endpoint", 1),
        ("Age", ".metadata.creationTimestamp", 0),
    ]
    assert _columns("aimservices") == [
        ("Status", ".status.status", 0),
        ("KVCache", ".status.resolvedKVCache.name", 0),
        ("Model", ".spec.model.image", 1),
        ("Age", ".metadata.creationTimestamp", 0),
    ]


@pytest.mark.parametrize("plural", ["aimkvcaches", "aimservices"])
def test_schema_is_structural_and_rejects_unknown_fields(plural: str) -> None:
    schema = _schema(plural)
    assert structural_errors(schema) == []
    # The one opaque field: core/v1 Affinity, validated by the API server in the pod template.
    opaque = {".spec.affinity"}
    for path, node in _walk(schema):
        if path in opaque:
            assert node.get("x-kubernetes-preserve-unknown-fields") is True, path
            continue
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        if node.get("type") == "object" and path not in (".metadata",):
            assert "properties" in node or "additionalProperties" in node, path


@pytest.mark.parametrize("plural", ["aimkvcaches", "aimservices"])
def test_every_field_is_documented(plural: str) -> None:
    for path, node in _walk(_schema(plural)):
        if path.startswith(".metadata") or path.endswith("{}") or path.endswith("[]"):
            continue
        assert node.get("description"), f"{plural}{path} has no description"


def test_quantities_are_int_or_string_with_the_quantity_pattern() -> None:
    props = _schema("aimkvcaches")["properties"]["spec"]["properties"]
    size = props["storage"]["properties"]["size"]
    assert size["x-kubernetes-int-or-string"] is True
    assert size["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert size["pattern"].startswith("^(\\+|-)?(([0-9]+")
    assert (
        props["resources"]["properties"]["limits"]["additionalProperties"]["pattern"]
        == (size["pattern"])
    )


def test_lists_are_maps_or_sets() -> None:
    spec = _schema("aimkvcaches")["properties"]["spec"]["properties"]
    assert spec["env"]["x-kubernetes-list-type"] == "map"
    assert spec["env"]["x-kubernetes-list-map-keys"] == ["name"]
    assert spec["storage"]["properties"]["accessModes"]["x-kubernetes-list-type"] == "set"
    conditions = _schema("aimkvcaches")["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["required"] == [
        "lastTransitionTime",
        "message",
        "reason",
        "status",
        "type",
    ]


def test_defaults_fill_in_the_guides_default_table() -> None:
    """Offline check of what the integration tests see on a real server."""
    schema = _schema("aimkvcaches")
    quick_start_cache = {
        "metadata": {"name": "kvcache-llama-chat"},
        "spec": {"kvCacheType": "redis"},
    }
    assert apply_defaults(quick_start_cache, schema)["spec"] == {
        "kvCacheType": "redis",
        "storage": {"size": "1Gi", "accessModes": ["ReadWriteOnce"]},
    }
    assert apply_defaults({}, schema)["spec"]["storage"]["size"] == "1Gi"
    service = apply_defaults(
        {"spec": {"model": {"image": "i"}, "kvCache": {"type": "redis", "storage": {}}}},
        _schema("aimservices"),
    )
    assert service["spec"]["replicas"] == 1
    assert service["spec"]["port"] == 8000
    assert service["spec"]["kvCache"] == {
        "type": "redis",
        "storage": {"size": "1Gi", "accessModes": ["ReadWriteOnce"]},
    }
    # Without storage the service keeps none: the cache it creates gets the defaults.
    bare = apply_defaults({"spec": {"kvCache": {"type": "redis"}}}, _schema("aimservices"))
    assert bare["spec"]["kvCache"] == {"type": "redis"}


def test_python_defaults_equal_the_crd_defaults() -> None:
    cache = AIMKVCache.model_validate({"metadata": {"name": "c"}})
    dumped = cache.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["spec"] == apply_defaults({}, _schema("aimkvcaches"))["spec"]


def test_rendering_is_deterministic() -> None:
    first = [render_crd(c) for c in generate_crds()]
    assert first == [render_crd(c) for c in generate_crds()]
    assert [crd_filename(c) for c in generate_crds()] == [
        "aim.silogen.ai_aimkvcaches.yaml",
        "aim.silogen.ai_aimservices.yaml",
    ]
    for text, crd in zip(first, generate_crds(), strict=True):
        assert text.startswith("# Generated by `aimctl manifests`")
        assert yaml.safe_load(text) == crd


def test_committed_crds_are_up_to_date() -> None:
    assert stale_differences(CRDS_DIR) == [], "run `aimctl manifests` and commit manifests/crds"


def test_manifests_command_writes_then_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "crds"
    result = runner.invoke(manifests, ["--output", str(out), "--check"])
    assert result.exit_code == 1
    assert "+++ " in result.output
    assert "are out of date" in result.output

    result = runner.invoke(manifests, ["--output", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "aim.silogen.ai_aimkvcaches.yaml",
        "aim.silogen.ai_aimservices.yaml",
    ]
    result = runner.invoke(manifests, ["--output", str(out), "--check"])
    assert (result.exit_code, result.output.strip()) == (0, f"CRDs in {out} are up to date")

    edited = out / "aim.silogen.ai_aimkvcaches.yaml"
    edited.write_text(edited.read_text().replace("aimkvc\n", "kvc\n"))
    (out / "aim.silogen.ai_aimold.yaml").write_text("---\n")
    result = runner.invoke(manifests, ["--output", str(out), "--check"])
    assert result.exit_code == 1
    assert "-    - kvc\n+    - aimkvc\n" in result.output
    assert "aim.silogen.ai_aimold.yaml: no model generates this file any more" in result.output

    result = runner.invoke(manifests, ["--output", str(out)])
    assert result.exit_code == 0
    assert "removed" in result.output
    assert stale_differences(out) == []


def test_the_aimctl_command_has_manifests() -> None:
    from aimctl.cli import cli

    result = CliRunner().invoke(cli, ["manifests", "--help"])
    assert result.exit_code == 0
    assert "--check" in result.output


def test_generated_schema_accepts_the_models_own_dump() -> None:
    svc = AIMService.model_validate(
        {"metadata": {"name": "s"}, "spec": {"model": {"image": "i"}, "kvCache": {"type": "redis"}}}
    )
    dumped = svc.model_dump(by_alias=True, exclude_none=True, mode="json")
    props = _schema("aimservices")["properties"]
    assert set(dumped) <= set(props)
    assert set(dumped["spec"]) <= set(props["spec"]["properties"])
