"""Fixtures of the ship tests: a private full control plane with a stricter admission chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aimctl.envtest import ControlPlane
from aimctl.envtest.pytest_plugin import private_control_plane

# OwnerReferencesPermissionEnforcement (on in OpenShift and hardened clusters, off by default):
# setting blockOwnerDeletion on a child needs `update` on the owner's finalizers subresource.
# With it on, the local server checks the ClusterRole's finalizers rules too.
STRICT_ADMISSION = {"enable-admission-plugins": "OwnerReferencesPermissionEnforcement"}


@pytest.fixture(scope="module")
def ship_cluster() -> Iterator[ControlPlane]:
    """A full control plane of this module's own: the tests deploy cluster-wide objects (CRDs,
    ClusterRoles) and run an operator that watches every namespace."""
    with private_control_plane(full=True, apiserver_args=STRICT_ADMISSION) as cp:
        yield cp
