"""The pinned control-plane versions: the one source of truth.

``hack/control-plane.sh`` reads these three assignments with ``sed``, so keep each on one line in
the form ``NAME: Final = "value"``. Changing a pin changes the cache directory name, so old and new
binaries never mix.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ETCD_VERSION", "K8S_VERSION", "KWOK_VERSION", "asset_dir_name"]

K8S_VERSION: Final = "v1.36.3"
ETCD_VERSION: Final = "v3.6.14"
KWOK_VERSION: Final = "v0.8.0"


def asset_dir_name(
    k8s: str = K8S_VERSION, etcd: str = ETCD_VERSION, kwok: str = KWOK_VERSION
) -> str:
    """The cache directory name the build script uses for one set of pins."""
    return f"k8s-{k8s}-etcd-{etcd}-kwok-{kwok}"
