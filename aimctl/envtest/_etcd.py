"""etcd for one control plane: flags, start, health, compaction.

Flags follow controller-runtime's envtest (``controlplane/etcd.go``): loopback client and peer
URLs on free ports, a private data directory and ``--unsafe-no-fsync``. The health probe is
``GET /health``; compaction goes through etcd's HTTP/JSON gateway, so no etcdctl is needed.
"""

from __future__ import annotations

import base64
import http.client
import json
from pathlib import Path
from typing import Any

from aimctl.envtest._ports import LOOPBACK, free_ports
from aimctl.envtest._process import ManagedProcess
from aimctl.envtest._rest import http_get_ok

__all__ = ["Etcd"]


class Etcd:
    """One etcd member on loopback.

    Guarantees: binds only to 127.0.0.1; data lives in ``work_dir/etcd``; output goes to
    ``work_dir/logs/etcd.log``.

    Raises: :class:`~aimctl.envtest._process.ProcessStartError` from :meth:`start`.
    """

    def __init__(self, binary: Path, *, work_dir: Path, detached: bool = False) -> None:
        self.binary = binary
        self.data_dir = work_dir / "etcd"
        self.client_port = 0
        self.peer_port = 0
        self._process = ManagedProcess(
            "etcd", [], log_path=work_dir / "logs" / "etcd.log", detached=detached
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.client_port}"

    @property
    def process(self) -> ManagedProcess:
        return self._process

    def args(self) -> list[str]:
        peer = f"http://{LOOPBACK}:{self.peer_port}"
        return [
            str(self.binary),
            "--name=default",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",
        ]

    def start(self, *, timeout: float) -> None:
        """Pick fresh ports, start etcd and wait until ``/health`` answers 200."""
        self.client_port, self.peer_port = free_ports(2)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._process.argv = self.args()
        self._process.start()
        self._process.wait_ready(
            lambda: http_get_ok(LOOPBACK, self.client_port, "/health"), timeout=timeout
        )

    def stop(self, timeout: float = 10.0) -> None:
        self._process.stop(timeout)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn = http.client.HTTPConnection(LOOPBACK, self.client_port, timeout=30)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data: dict[str, Any] = json.loads(resp.read() or b"{}")
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"etcd {path}: {resp.status} {data}")
        return data

    def revision(self) -> int:
        """The store's current revision."""
        data = self._post(
            "/v3/kv/range", {"key": base64.b64encode(b"\0").decode(), "count_only": True}
        )
        return int(data["header"]["revision"])

    def compact(self) -> int:
        """Compact (physically) to the current revision and return it.

        Afterwards every older revision is gone from etcd: a watch or list from an older
        resourceVersion that reaches etcd gets 410 Gone.
        """
        revision = self.revision()
        self._post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision
