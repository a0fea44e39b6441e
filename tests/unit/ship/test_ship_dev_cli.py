"""``aimctl dev``'s pieces that need no cluster: the fast-ssd StorageClass, the operator's
command line, the pid bookkeeping, and the CLI's refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import yaml
from click.testing import CliRunner

from aimctl.cli import _dev as dev, _dev_operator as operator, _dev_samples as samples, cli
from aimctl.cli._manifests import shipped_dir
from aimctl.envtest import (
    KWOK_PROVISIONER,
    kwok_storage_class,
    local_path_class,
    pid_alive,
    process_start_time,
)


def test_fast_ssd_is_an_expandable_class_the_clusters_kwok_binds() -> None:
    applied: list[dict[str, Any]] = []
    kubectl = MagicMock(spec=dev.Kubectl)
    kubectl.apply_objects.side_effect = applied.extend
    dev._storage(kubectl, real_node=False)
    (sc,) = applied
    assert sc == kwok_storage_class("fast-ssd", expandable=True)
    assert sc["provisioner"] == KWOK_PROVISIONER == "kwok.x-k8s.io/volume"
    assert sc["allowVolumeExpansion"] is True
    assert sc["volumeBindingMode"] == "Immediate"
    assert "annotations" not in sc["metadata"]  # kwok-volume stays the default class


def test_with_a_real_node_fast_ssd_is_local_path_and_redis_pods_go_there() -> None:
    applied: list[dict[str, Any]] = []
    kubectl = MagicMock(spec=dev.Kubectl)
    kubectl.apply_objects.side_effect = applied.extend
    # The dry-run probe dev waits on: the policy is in effect once it adds the node selector.
    mutated = {"spec": {"nodeSelector": {"aimctl.dev/node": "real"}}}
    kubectl.run.return_value.stdout = json.dumps(mutated)
    dev._storage(kubectl, real_node=True)
    (call,) = kubectl.run.call_args_list
    assert call.args[:2] == ("create", "--dry-run=server")
    sc, policy, binding = applied
    assert sc == local_path_class("fast-ssd", default=False)
    assert sc["provisioner"] == "rancher.io/local-path"
    assert sc["allowVolumeExpansion"] is True
    assert policy["kind"] == "MutatingAdmissionPolicy"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    (condition,) = policy["spec"]["matchConditions"]
    assert (
        'object.metadata.labels["app.kubernetes.io/name"] == "aimkvcache"'
        in (condition["expression"])
    )


def test_operator_command_line() -> None:
    argv = operator.operator_argv(Path("/d/cluster/kubeconfig"))
    assert argv[:4] == [sys.executable, "-m", "aimctl", "run"]
    assert " ".join(argv[4:]) == (
        "--kubeconfig /d/cluster/kubeconfig --log-format console --no-leader-elect "
        "--metrics-bind-address 127.0.0.1:8080 --no-metrics-secure "
        "--health-probe-bind-address 127.0.0.1:8081"
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
        (tmp_path / operator.STATE_FILE).write_text(
            json.dumps({"processes": [{**record, "start_time": start + 1}]})
        )
        assert operator.stop_recorded(tmp_path) == []
        assert pid_alive(child.pid)
        assert not (tmp_path / operator.STATE_FILE).exists()
        (tmp_path / operator.STATE_FILE).write_text(
            json.dumps({"processes": [{**record, "start_time": start}]})
        )
        assert operator.stop_recorded(tmp_path) == ["operator"]
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
    sample_dir = shipped_dir() / "samples"
    for name in (samples.QUICK_START, *samples.SHARED):
        docs = list(yaml.safe_load_all((sample_dir / name).read_text()))
        assert all(d["metadata"]["namespace"] == samples.NAMESPACE for d in docs if d)
