"""Configuration loading through kubernetes-asyncio's loaders: host, TLS, auth and refresh."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from aimctl.client import load_kubeconfig


def write_kubeconfig(path: Path, server: str, user: dict[str, object]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u"}},
            {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "x"}},
        ],
        "current-context": "main",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_a_token_kubeconfig_gives_host_tls_and_bearer_header(tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443/", {"token": "abc"})
    config = await load_kubeconfig(str(kc))
    assert config.host == "https://127.0.0.1:6443"
    assert config.host_port == "127.0.0.1:6443"
    assert config.ssl_context is not None
    assert await config.auth_headers() == {"Authorization": "Bearer abc"}
    assert not await config.refresh_credentials()


async def test_kubeconfig_env_and_context_selection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kc = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:8080", {"token": "t"})
    monkeypatch.setenv("KUBECONFIG", f"{kc}{os.pathsep}/nonexistent")
    config = await load_kubeconfig(context="other")
    assert config.host == "http://127.0.0.1:8080"
    assert config.ssl_context is None


async def test_exec_plugin_tokens_are_refreshed_when_expired_and_after_a_401(
    tmp_path: Path,
) -> None:
    counter = tmp_path / "count"
    counter.write_text("0")
    script = tmp_path / "cred.sh"
    # Each run prints a new token; the expiry is in the past, so every request re-runs it.
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(($(cat {counter}) + 1)); echo $n > {counter}\n"
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"tok-%s","expirationTimestamp":"2000-01-01T00:00:00Z"}}\' "$n"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    kc = write_kubeconfig(
        tmp_path / "kc",
        "https://127.0.0.1:6443",
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(script),
                "interactiveMode": "Never",
            }
        },
    )
    config = await load_kubeconfig(str(kc))
    first = await config.auth_headers()
    second = await config.auth_headers()
    assert first["Authorization"].startswith("Bearer tok-")
    assert first != second  # expired: re-run
    assert await config.refresh_credentials()
    third = await config.auth_headers()
    assert third != second
    assert json.loads(counter.read_text()) >= 3
