"""Serving certificate and key from files, re-read when they change.

controller-runtime's certwatcher (kubernetes-sigs/controller-runtime: pkg/certwatcher/
certwatcher.go) watches the files with fsnotify and also polls every 10 s, because a mounted
Secret is updated by swapping a ``..data`` symlink, an event file watchers may miss. We poll
only: a rotation is picked up within ``interval`` seconds, which is fine for certificates that
the issuer renews well before they expire.

Contract: the live ``ssl.SSLContext`` keeps serving the last good pair. A changed pair is
loaded into a scratch context first; only when that succeeds (certificate and key match, both
parse) is it loaded into the live one, so a rotation caught half-written (new certificate, old
key) is retried at the next poll instead of breaking the server. New TLS handshakes use the new
pair; connections already open keep theirs.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import structlog

from aimctl.metrics import Counter

__all__ = ["CertWatcher"]

log = structlog.get_logger("aimctl.webhook")

_Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)  # follows symlinks: a Secret mount's ..data swap changes the target
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # controller-runtime's webhook server defaults to TLS 1.2 as the minimum.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class CertWatcher:
    """Owns the server's ``ssl.SSLContext`` and keeps it loaded with the current pair."""

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        interval: float = 10.0,
        reads: Counter | None = None,
        read_errors: Counter | None = None,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.interval = interval
        self.context = _server_context()
        self._stamp: _Stamp | None = None
        self._reads = reads if reads is not None else Counter()
        self._errors = read_errors if read_errors is not None else Counter()
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0  # successful loads, for tests and logs

    def read(self) -> None:
        """Load the pair now.

        Raises:
            OSError, ssl.SSLError: the files are missing or do not form a pair.
        """
        stamp = (_stamp(self.cert_file), _stamp(self.key_file))
        self._reads.inc()
        try:
            _server_context().load_cert_chain(self.cert_file, self.key_file)  # validate first
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError):
            self._errors.inc()
            raise
        self._stamp = stamp
        self.reloads += 1

    def changed(self) -> bool:
        try:
            return (_stamp(self.cert_file), _stamp(self.key_file)) != self._stamp
        except OSError:
            return False  # mid-rotation: a file is briefly missing; look again next time

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.changed():
                continue
            try:
                self.read()
            except (OSError, ssl.SSLError) as err:
                log.warning("Serving certificate not reloaded", error=repr(err))
            else:
                log.info("Serving certificate reloaded", cert=str(self.cert_file))

    def start(self) -> None:
        """Load the pair (raising if it is unusable) and poll for changes."""
        self.read()
        self._task = asyncio.create_task(self._poll(), name="aimctl-webhook-certwatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
