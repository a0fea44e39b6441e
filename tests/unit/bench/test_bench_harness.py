"""How the harness names its own requests, so they can be taken out of the server's counts."""

from __future__ import annotations

import pytest

from bench._harness import cache_names, request_key
from bench._stats import RequestKey


@pytest.mark.parametrize(
    ("method", "path", "params", "content_type", "expected"),
    [
        (
            "GET",
            "/apis/aim.silogen.ai/v1alpha1/namespaces/ns/aimkvcaches",
            None,
            "",
            RequestKey("LIST", "aim.silogen.ai", "aimkvcaches", ""),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/ns/statefulsets",
            {"watch": True},
            "",
            RequestKey("WATCH", "apps", "statefulsets", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/services/s",
            None,
            "",
            RequestKey("GET", "", "services", ""),
        ),
        (
            "POST",
            "/apis/aim.silogen.ai/v1alpha1/namespaces/ns/aimkvcaches",
            None,
            "application/json",
            RequestKey("POST", "aim.silogen.ai", "aimkvcaches", ""),
        ),
        (
            "PATCH",
            "/apis/aim.silogen.ai/v1alpha1/namespaces/ns/aimkvcaches/c/status",
            None,
            "application/apply-patch+yaml",
            RequestKey("APPLY", "aim.silogen.ai", "aimkvcaches", "status"),
        ),
        (
            "PATCH",
            "/apis/aim.silogen.ai/v1alpha1/namespaces/ns/aimkvcaches/c",
            None,
            "application/merge-patch+json",
            RequestKey("PATCH", "aim.silogen.ai", "aimkvcaches", ""),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/ns/services",
            None,
            "",
            RequestKey("DELETECOLLECTION", "", "services", ""),
        ),
        ("POST", "/api/v1/namespaces", None, "", RequestKey("POST", "", "namespaces", "")),
        ("DELETE", "/api/v1/namespaces/ns", None, "", RequestKey("DELETE", "", "namespaces", "")),
        (
            "GET",
            "/apis/storage.k8s.io/v1/storageclasses",
            None,
            "",
            RequestKey("LIST", "storage.k8s.io", "storageclasses", ""),
        ),
        ("GET", "/metrics", None, "", RequestKey("GET", "", "", "/metrics")),
        ("GET", "/version", None, "", RequestKey("GET", "", "", "/version")),
    ],
)
def test_request_key_matches_the_api_servers_labels(
    method: str,
    path: str,
    params: dict[str, object] | None,
    content_type: str,
    expected: RequestKey,
) -> None:
    assert request_key(method, path, params, content_type) == expected


def test_cache_names_sort_in_creation_order() -> None:
    names = cache_names(1000)
    assert names[0] == "cache-0000"
    assert names[-1] == "cache-0999"
    assert names == sorted(names)
