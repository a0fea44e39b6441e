"""Every YAML example of the user guide is covered by a file in manifests/samples.

The guide (using-kv-cache.md, the project's contract) is kept in docs/; where the shared folder
it comes from sits next to the repository, the copy must equal it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "manifests" / "samples"
GUIDE = REPO / "docs" / "using-kv-cache.md"
_SHARED_GUIDE = REPO.parent / "shared" / "seed" / "using-kv-cache.md"


def _guide_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def _sample_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(SAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _contains(big: Any, small: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _contains(big[k], v) for k, v in small.items()
        )
    return bool(big == small)


def _places(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a guide fragment may sit in a sample: the object, its spec, kvCache, storage."""
    spec = doc.get("spec", {})
    kv = spec.get("kvCache", {})
    return [doc, spec, {"kvCache": kv}, {"storage": kv.get("storage", spec.get("storage"))}]


@pytest.mark.parametrize("block", _guide_blocks(), ids=lambda b: b.split("\n", 1)[0][:40])
def test_guide_example_has_a_sample(block: str) -> None:
    samples = _sample_docs()
    for fragment in (d for d in yaml.safe_load_all(block) if d):
        assert any(_contains(place, fragment) for doc in samples for place in _places(doc)), (
            f"no sample in manifests/samples contains:\n{yaml.safe_dump(fragment)}"
        )


def test_the_guide_has_the_expected_number_of_examples() -> None:
    assert len(_guide_blocks()) == 13


def test_the_guide_copy_equals_the_shared_original_when_present() -> None:
    if _SHARED_GUIDE.exists():  # a clean clone elsewhere has only the copy
        assert GUIDE.read_text() == _SHARED_GUIDE.read_text(), (
            f"docs/using-kv-cache.md differs from {_SHARED_GUIDE}: copy the new guide over"
        )


def _caches() -> list[tuple[str, dict[str, Any]]]:
    """Every cache spec a sample defines: AIMKVCaches and the kvCache a service creates."""
    found = []
    for doc in _sample_docs():
        name = doc["metadata"]["name"]
        if doc["kind"] == "AIMKVCache":
            found.append((name, doc.get("spec", {})))
        elif "type" in doc["spec"].get("kvCache", {}):
            found.append((f"{name}.kvCache", doc["spec"]["kvCache"]))
    return found


def test_no_sample_configures_redis_through_env() -> None:
    """redis-server reads no environment variables and the operator sets its command, so an env
    var like REDIS_ARGS or REDIS_MAXMEMORY_POLICY does nothing: spec.redis is the way."""
    for name, spec in _caches():
        for var in spec.get("env") or ():
            assert not var["name"].startswith("REDIS_"), f"{name}: env {var['name']}"


def test_sample_redis_images_are_fully_qualified_and_patched() -> None:
    """A pinned image names its registry (no short-name resolution) and carries at least the
    patches of the operator's default (the 7.2 line, 7.2.12)."""
    from aimctl.reconcilers.kvcache._desired import DEFAULT_IMAGE

    default_tag = DEFAULT_IMAGE.rsplit(":", 1)[1]
    for name, spec in _caches():
        image = spec.get("image")
        if image is None:
            continue
        assert "." in image.split("/", 1)[0], f"{name}: {image} does not name its registry"
        assert image.rsplit(":", 1)[1] == default_tag, f"{name}: {image} is not {default_tag}"


def test_the_podmonitor_selects_the_exporter_of_the_production_sample() -> None:
    """manifests/prometheus/kvcache-podmonitor.yaml scrapes what the operator renders for a cache
    with metrics enabled: the pod carries the selected labels and a container port of that name,
    and the relabelled label comes from a pod label that is there."""
    from aimctl.api.v1alpha1 import AIMKVCache
    from aimctl.reconcilers.kvcache import _desired

    monitor = yaml.safe_load((REPO / "manifests/prometheus/kvcache-podmonitor.yaml").read_text())
    (doc,) = yaml.safe_load_all((SAMPLES / "extra-kvcache-production.yaml").read_text())
    raw = {**doc, "metadata": {**doc["metadata"], "uid": "u1"}}
    sts = _desired.statefulset(AIMKVCache.model_validate(raw), raw, auth_hash="0" * 16)
    pod = sts["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert ports[endpoint["port"]] == 9121
    for relabel in endpoint["relabelings"]:
        for source in relabel["sourceLabels"]:
            label = source.removeprefix("__meta_kubernetes_pod_label_")
            assert any(re.sub(r"[^a-zA-Z0-9_]", "_", k) == label for k in labels), source


def test_the_production_sample_renders_what_its_comments_say() -> None:
    """2Gi limit -> maxmemory 1536Mi (75%, RDB), allkeys-lru, the exporter, the placement."""
    from aimctl.api import quantity
    from aimctl.api.v1alpha1 import AIMKVCache
    from aimctl.reconcilers.kvcache import _desired

    (doc,) = yaml.safe_load_all((SAMPLES / "extra-kvcache-production.yaml").read_text())
    raw = {**doc, "metadata": {**doc["metadata"], "uid": "u1"}}
    pod = _desired.statefulset(AIMKVCache.model_validate(raw), raw, auth_hash="0" * 16)["spec"][
        "template"
    ]["spec"]
    redis, exporter = pod["containers"]
    args = redis["args"]
    assert args[args.index("--maxmemory") + 1] == str(1536 * 2**20)
    assert args[args.index("--maxmemory-policy") + 1] == "allkeys-lru"
    assert args[args.index("--save") + 1 : args.index("--save") + 3] == ["300", "1"]
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9121, "protocol": "TCP"}]
    assert pod["nodeSelector"] == doc["spec"]["nodeSelector"]
    assert pod["tolerations"] == doc["spec"]["tolerations"]
    # storage.size holds two snapshots of a full cache (the RDB file and its temporary copy)
    size = quantity.parse_quantity(doc["spec"]["storage"]["size"])
    assert size >= 2 * int(args[args.index("--maxmemory") + 1])
