"""Submit objects with the pinned kubectl exactly as a user would, and read its rejections."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from aimctl.envtest import ControlPlane

REPO = Path(__file__).resolve().parents[3]
CRDS_DIR = REPO / "manifests" / "crds"
SAMPLES_DIR = REPO / "manifests" / "samples"


class Kubectl:
    """The pinned kubectl as admin, in one namespace."""

    def __init__(self, cp: ControlPlane, namespace: str) -> None:
        self.cp = cp
        self.namespace = namespace

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.cp.kubectl("-n", self.namespace, *args, input=input, check=False)

    def apply(self, *objects: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """``kubectl apply --validate=strict`` (server-side field validation: Strict)."""
        docs = [self._here(o) for o in objects]
        return self(
            "apply", "--validate=strict", "-f", "-", input="\n---\n".join(map(json.dumps, docs))
        )

    def get(self, kind: str, name: str) -> dict[str, Any]:
        out = self("get", kind, name, "-o", "json")
        assert out.returncode == 0, out.stderr
        obj: dict[str, Any] = json.loads(out.stdout)
        return obj

    def patch_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        out = self(
            "patch", kind, name, "--subresource=status", "--type=merge", "-p",
            json.dumps({"status": status}),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr

    def _here(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = json.loads(json.dumps(obj))
        obj.setdefault("metadata", {})["namespace"] = self.namespace
        return obj


def rejection(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The errors kubectl printed for a rejected object, one per item.

    ``The AIMKVCache "x" is invalid: <one error>`` gives one item; a multi-error answer lists them
    as ``* <error>`` lines; strict decoding reports ``... strict decoding error: <error>``.
    """
    assert result.returncode != 0, f"accepted: {result.stdout}"
    text = result.stderr.strip()
    if "strict decoding error: " in text:
        return [e.strip() for e in text.split("strict decoding error: ", 1)[1].split(", unknown")]
    lines = text.splitlines()
    items = [line[2:] for line in lines if line.startswith("* ")]
    if items:
        return items
    return [text.split(" is invalid: ", 1)[1]] if " is invalid: " in text else [text]
