"""The certificate watcher: new pairs are picked up, broken ones never replace a good one."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from aimctl.metrics import Counter
from aimctl.webhook import CertWatcher, SelfSignedCerts


def test_read_loads_the_pair_and_counts(tmp_path: Path) -> None:
    certs = SelfSignedCerts(tmp_path)
    certs.issue()
    reads, errors = Counter(), Counter()
    w = CertWatcher(tmp_path / "tls.crt", tmp_path / "tls.key", reads=reads, read_errors=errors)
    w.read()
    assert (w.reloads, reads.value, errors.value) == (1, 1, 0)
    assert not w.changed()
    certs.issue()
    assert w.changed()


def test_a_mismatched_pair_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    certs = SelfSignedCerts(tmp_path)
    certs.issue()
    errors = Counter()
    w = CertWatcher(tmp_path / "tls.crt", tmp_path / "tls.key", read_errors=errors)
    w.read()
    # A rotation caught half-way: the new certificate, the old key.
    key = (tmp_path / "tls.key").read_bytes()
    certs.issue()
    (tmp_path / "tls.key").write_bytes(key)
    with pytest.raises(ssl.SSLError):
        w.read()
    assert errors.value == 1 and w.reloads == 1
    assert w.changed()  # so the poll tries again


async def test_polling_reloads_a_rotated_pair(tmp_path: Path) -> None:
    certs = SelfSignedCerts(tmp_path)
    certs.issue()
    w = CertWatcher(tmp_path / "tls.crt", tmp_path / "tls.key", interval=0.01)
    w.start()
    try:
        certs.issue()
        async with asyncio.timeout(30):
            while True:
                if w.reloads >= 2:
                    break
                await asyncio.sleep(0.01)
    finally:
        await w.stop()


def test_missing_files_fail_the_start(tmp_path: Path) -> None:
    w = CertWatcher(tmp_path / "tls.crt", tmp_path / "tls.key")
    with pytest.raises(OSError):
        w.read()
