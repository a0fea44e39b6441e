"""Acceptance: /version equals the pinned version (the binaries are stamped like upstream's)."""

from __future__ import annotations

from kubernetes_asyncio.client import ApiClient, VersionApi

from aimctl.envtest import K8S_VERSION, ControlPlane


async def test_version_is_the_pinned_release(api: ApiClient) -> None:
    info = await VersionApi(api).get_code()
    assert info.git_version == K8S_VERSION == "v1.36.3"
    assert (info.major, info.minor) == ("1", "36")


def test_pinned_kubectl_talks_to_the_control_plane(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("get", "ns", "default", "-o", "name").stdout
    assert out.strip() == "namespace/default"
    assert control_plane.url.startswith("https://127.0.0.1:")
