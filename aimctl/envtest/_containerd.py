"""The containerd configuration of the real node: everything under the caller's directories.

containerd 1.6 (Debian 12) with its CRI plugin, runc through the v2 shim, the overlayfs
snapshotter, CNI plugins from Debian's ``containernetworking-plugins``, and the sandbox image
that :mod:`aimctl.envtest._images` imports (no registry is ever contacted). Facts from the
feasibility spike (/work/shared/reference/real-node.md):

- ``restrict_oom_score_adj = true`` is required: root in these VMs lacks ``CAP_SYS_RESOURCE``
  in its bounding set, so runc cannot give the pause container a negative OOM score and every
  sandbox fails with "can't get final child's PID from pipe: EOF";
- ``SystemdCgroup = false``: the kubelet runs with ``cgroupDriver: cgroupfs`` (no systemd here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from aimctl.envtest._images import PAUSE_IMAGE

__all__ = ["CNI_BIN_DIR", "RUNC", "SOCKET_PATH_MAX", "containerd_config"]

CNI_BIN_DIR: Final = Path("/usr/lib/cni")
RUNC: Final = Path("/usr/sbin/runc")
# sun_path is 108 bytes with its NUL, and containerd also listens on "<address>.ttrpc".
SOCKET_PATH_MAX: Final = 107 - len(".ttrpc")

# Snapshotters this machine cannot use anyway; disabled so they do not log failures at start.
_DISABLED_PLUGINS = (
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
)


def _toml(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def containerd_config(root: Path, state: Path, socket: Path, cni_conf_dir: Path) -> str:
    """The ``config.toml`` (version 2) for a containerd keeping all its state in ``root`` and
    ``state``, serving gRPC on ``socket`` (and ttrpc on ``<socket>.ttrpc``).

    Nothing goes to the host-wide defaults: the ``opt`` plugin installs into ``root/opt``
    instead of ``/opt/containerd``, and the debug and metrics endpoints are off. The CRI plugin
    reads CNI network configs from ``cni_conf_dir`` and plugins from :data:`CNI_BIN_DIR`.

    Raises:
        ValueError: ``socket`` is too long for a unix socket address (keep it short, e.g.
            under ``/tmp``); containerd would fail to start with a less clear message.
    """
    if len(str(socket).encode()) > SOCKET_PATH_MAX:
        raise ValueError(
            f"containerd socket path {socket} is longer than {SOCKET_PATH_MAX} bytes "
            "(unix socket addresses are limited to 107, and containerd adds '.ttrpc')"
        )
    cri = '[plugins."io.containerd.grpc.v1.cri"'
    disabled = ", ".join(_toml(p) for p in _DISABLED_PLUGINS)
    return f"""\
version = 2
root = {_toml(root)}
state = {_toml(state)}
disabled_plugins = [{disabled}]

[grpc]
  address = {_toml(socket)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {_toml(root / "opt")}
  {cri}]
    sandbox_image = {_toml(PAUSE_IMAGE)}
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    {cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      {cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        {cri}.containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = {_toml(RUNC)}
    {cri}.cni]
      bin_dir = {_toml(CNI_BIN_DIR)}
      conf_dir = {_toml(cni_conf_dir)}
      max_conf_num = 1
"""
