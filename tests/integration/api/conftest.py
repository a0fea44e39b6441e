"""The AIM CRDs (as committed in manifests/crds) on the session's control plane."""

from __future__ import annotations

import pytest

from aimctl.envtest import ControlPlane

from .aim_kubectl import CRDS_DIR, Kubectl


@pytest.fixture(scope="session")
def aim_crds(control_plane: ControlPlane) -> list[str]:
    """Install the committed CRDs once per session (idempotent: other suites may too)."""
    return control_plane.install_crds([CRDS_DIR])


@pytest.fixture
def aim(control_plane: ControlPlane, aim_crds: list[str], namespace: str) -> Kubectl:
    """kubectl bound to a fresh namespace with the AIM CRDs installed."""
    return Kubectl(control_plane, namespace)
