"""The pinned kubectl prints the guide's columns for AIMKVCache (status set through the status
subresource, as the operator does), and useful ones for AIMService; short names, categories and
``kubectl explain`` work."""

from __future__ import annotations

import re

import yaml

from .aim_kubectl import SAMPLES_DIR, Kubectl

API = "aim.silogen.ai/v1alpha1"
AGE = re.compile(r"^\d+[smh]")


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = text.strip().splitlines()
    return header.split(), [row.split() for row in rows]


def _guide_caches(aim: Kubectl) -> None:
    """The two caches of the guide's "Check KV Cache Status" output, Ready with 1 replica."""
    (shared,) = yaml.safe_load_all((SAMPLES_DIR / "shared-cache.yaml").read_text())
    own = {"apiVersion": API, "kind": "AIMKVCache", "metadata": {"name": "kvcache-llama"}}
    assert aim.apply(own, shared).returncode == 0
    for name in ("kvcache-llama", "shared-cache"):
        aim.patch_status(
            "aimkvcache",
            name,
            {
                "status": "Ready",
                "replicas": 1,
                "readyReplicas": 1,
                "endpoint": f"redis://{name}-svc:6379",
                "statefulSetName": f"{name}-statefulset",
                "serviceName": f"{name}-svc",
                "storageSize": "1Gi",
            },
        )


def test_get_aimkvcache_prints_the_guides_columns(aim: Kubectl) -> None:
    _guide_caches(aim)
    out = aim("get", "aimkvcache")
    assert out.returncode == 0, out.stderr
    header, rows = _table(out.stdout)
    assert header == ["NAME", "TYPE", "STATUS", "READY", "AGE"]
    assert [row[:4] for row in rows] == [
        ["kvcache-llama", "redis", "Ready", "1"],
        ["shared-cache", "redis", "Ready", "1"],
    ]
    assert all(AGE.match(row[4]) and len(row) == 5 for row in rows)


def test_get_aimkvcache_wide_adds_the_endpoint_before_age(aim: Kubectl) -> None:
    _guide_caches(aim)
    out = aim("get", "aimkvcache", "-o", "wide")
    assert out.returncode == 0, out.stderr
    header, rows = _table(out.stdout)
    assert header == ["NAME", "TYPE", "STATUS", "READY", "ENDPOINT", "AGE"]
    assert [row[:5] for row in rows] == [
        ["kvcache-llama", "redis", "Ready", "1", "redis://kvcache-llama-svc:6379"],
        ["shared-cache", "redis", "Ready", "1", "redis://shared-cache-svc:6379"],
    ]
    assert all(AGE.match(row[5]) and len(row) == 6 for row in rows)


def test_columns_line_up_under_their_headers(aim: Kubectl) -> None:
    _guide_caches(aim)
    lines = aim("get", "aimkvcache", "-o", "wide").stdout.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for line in lines[1:]:
        assert [m.start() for m in re.finditer(r"\S+", line)] == starts


def test_a_new_cache_shows_empty_status_cells(aim: Kubectl) -> None:
    assert (
        aim.apply({"apiVersion": API, "kind": "AIMKVCache", "metadata": {"name": "c"}}).returncode
        == 0
    )
    header, rows = _table(aim("get", "aimkvcache").stdout)
    assert header == ["NAME", "TYPE", "STATUS", "READY", "AGE"]
    assert rows[0][:2] == ["c", "redis"]
    assert len(rows[0]) == 3  # STATUS and READY stay empty until the operator writes status


def test_short_name_and_categories(aim: Kubectl) -> None:
    _guide_caches(aim)
    (svc,) = yaml.safe_load_all((SAMPLES_DIR / "quick-start.yaml").read_text())
    assert aim.apply(svc).returncode == 0
    assert aim("get", "aimkvc", "-o", "name").stdout.split() == [
        "aimkvcache.aim.silogen.ai/kvcache-llama",
        "aimkvcache.aim.silogen.ai/shared-cache",
    ]
    assert aim("get", "aimsvc", "-o", "name").stdout.split() == [
        "aimservice.aim.silogen.ai/llama-chat"
    ]
    for category in ("aim", "all"):
        names = aim("get", category, "-o", "name").stdout.split()
        assert "aimkvcache.aim.silogen.ai/shared-cache" in names, category
        assert "aimservice.aim.silogen.ai/llama-chat" in names, category


def test_get_aimservice_columns(aim: Kubectl) -> None:
    docs = list(yaml.safe_load_all((SAMPLES_DIR / "shared-cache-services.yaml").read_text()))
    assert aim.apply(*[d for d in docs if d]).returncode == 0
    aim.patch_status(
        "aimservice",
        "llama-chat",
        {"status": "Running", "resolvedKVCache": {"name": "shared-cache"}},
    )
    header, rows = _table(aim("get", "aimservice").stdout)
    assert header == ["NAME", "STATUS", "KVCACHE", "AGE"]
    assert rows[0][:3] == ["llama-chat", "Running", "shared-cache"]
    assert rows[1][0] == "llama-completion"
    header, rows = _table(aim("get", "aimservice", "-o", "wide").stdout)
    assert header == ["NAME", "STATUS", "KVCACHE", "MODEL", "AGE"]
    assert rows[0][:4] == [
        "llama-chat",
        "Running",
        "shared-cache",
        "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0",
    ]


def test_kubectl_explain_shows_the_field_descriptions(aim: Kubectl) -> None:
    out = aim("explain", "aimkvcache.spec.storage.size")
    assert out.returncode == 0, out.stderr
    assert "Default 1Gi" in out.stdout
    out = aim("explain", "aimservice.spec.kvCache")
    assert "Set type to have the service create its own cache" in " ".join(out.stdout.split())
