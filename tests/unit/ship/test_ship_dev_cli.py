"""``aimctl dev``'s pieces that need no cluster: the fast-ssd StorageClass and its kwok stages,
the operator's command line, the pid bookkeeping, and the CLI's refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aimctl import _dev_cli as dev
from aimctl.cli import cli
from aimctl.envtest._process import pid_alive, process_start_time

PROVISION = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pvc-provision
spec:
  resourceRef: {apiGroup: v1, kind: PersistentVolumeClaim}
  selector:
    matchExpressions:
    - cel:
        expression: >-
          self.spec.storageClassName == 'kwok-volume'
    - cel:
        expression: >-
          !has(self.metadata.deletionTimestamp)
  steps: []
"""


def stage_tree(root: Path, provision: str = PROVISION) -> Path:
    fast = root / "volume" / "fast"
    fast.mkdir(parents=True)
    (fast / "pvc-provision.yaml").write_text(provision)
    (fast / "kustomization.yaml").write_text("resources: [pvc-provision.yaml]\n")
    (fast / "storage-class.yaml").write_text(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: kwok-volume}\n"
    )
    return root


def test_volume_stages_select_the_new_classes_instead_of_kwok_volume(tmp_path: Path) -> None:
    stages = dev.volume_stages(stage_tree(tmp_path), ["fast-ssd", "premium-ssd"])
    names = [s["metadata"]["name"] for s in stages]
    assert names == ["pvc-provision-fast-ssd-premium-ssd", "pvc-resize-fast-ssd-premium-ssd"]
    expressions = [
        e["cel"]["expression"] for s in stages for e in s["spec"]["selector"]["matchExpressions"]
    ]
    assert "self.spec.storageClassName in ['fast-ssd', 'premium-ssd']" in expressions
    assert not [e for e in expressions if "kwok-volume" in e]
    resize = stages[-1]["spec"]
    assert resize["resourceRef"] == {"apiGroup": "v1", "kind": "PersistentVolumeClaim"}
    (patch,) = resize["steps"]
    assert patch["patch"]["subresource"] == "status"
    assert ".spec.resources.requests.storage" in patch["patch"]["template"]


def test_volume_stages_fail_loudly_when_kwok_changes_its_selector(tmp_path: Path) -> None:
    changed = PROVISION.replace("self.spec.storageClassName == 'kwok-volume'", "true")
    with pytest.raises(ValueError, match="no longer selects"):
        dev.volume_stages(stage_tree(tmp_path, changed))


def test_fast_ssd_storage_class_binds_through_kwok_and_can_grow() -> None:
    sc = dev.fast_ssd_storage_class()
    assert sc["metadata"]["name"] == "fast-ssd"
    assert sc["provisioner"] == "kwok.x-k8s.io/volume"
    assert sc["allowVolumeExpansion"] is True
    assert sc["volumeBindingMode"] == "Immediate"


def test_operator_command_line() -> None:
    argv = dev.operator_argv(Path("/d/cluster/kubeconfig"))
    assert argv[:4] == [sys.executable, "-m", "aimctl", "run"]
    assert " ".join(argv[4:]) == (
        "--kubeconfig /d/cluster/kubeconfig --log-format console --no-leader-elect "
        "--metrics-bind-address 127.0.0.1:8080 --health-probe-bind-address 127.0.0.1:8081"
    )


def test_down_signals_only_a_pid_whose_start_time_matches(tmp_path: Path) -> None:
    # Detached processes lead their own session; down signals the whole group.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        start = process_start_time(child.pid)
        assert start is not None
        record = {"name": "operator", "pid": child.pid, "log": "x"}
        # A recycled pid (another start time) is left alone.
        (tmp_path / dev.STATE_FILE).write_text(
            json.dumps({"processes": [{**record, "start_time": start + 1}]})
        )
        assert dev._stop_processes(tmp_path) == []
        assert pid_alive(child.pid)
        assert not (tmp_path / dev.STATE_FILE).exists()
        (tmp_path / dev.STATE_FILE).write_text(
            json.dumps({"processes": [{**record, "start_time": start}]})
        )
        assert dev._stop_processes(tmp_path) == ["operator"]
        assert child.wait(5) != 0
    finally:
        child.kill()
        child.wait()


def test_cli_registers_dev_up_and_down() -> None:
    result = CliRunner().invoke(cli, ["dev", "--help"])
    assert result.exit_code == 0
    assert "up" in result.output
    assert "down" in result.output


def test_down_with_nothing_running(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dev", "down", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "nothing was running" in result.output


def test_up_refuses_a_manifests_dir_without_the_samples(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["dev", "up", "--dir", str(tmp_path / "d"), "--manifests", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "no samples" in result.output
    assert not (tmp_path / "d").exists()


def test_samples_the_dev_cluster_applies_exist() -> None:
    samples = Path(dev.__file__).resolve().parent.parent / "manifests" / "samples"
    for name in (dev.QUICK_START, *dev.SHARED):
        docs = list(yaml.safe_load_all((samples / name).read_text()))
        assert all(d["metadata"]["namespace"] == dev.NAMESPACE for d in docs if d)
