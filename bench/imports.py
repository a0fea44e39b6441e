"""Imports: what starting aimctl costs before it does anything.

    python -m bench.imports [--repeat 5] [--no-write]

Each case runs in a fresh interpreter with ``PYTHONPROFILEIMPORTTIME=1`` (``python -X
importtime``), ``--repeat`` times; medians are reported:

- ``import aimctl.workqueue``, ``import aimctl``: ``python -c "import ..."``;
- ``aimctl --help``: the installed console script;
- ``aimctl run`` start-up: the console script against a kubeconfig (a real CA and client
  certificate, like envtest's) whose server is a closed port on 127.0.0.1, so the process loads
  everything it needs, builds its TLS context, tries ``GET /version`` and exits 3 at once: the
  start-up up to connecting, nothing more.

*Imports* is the sum of the cumulative times ``-X importtime`` reports for the top-level imports
the case adds to a bare ``python -c pass`` (the interpreter's own start-up imports are left
out); *wall* and *CPU* (user + system) are the whole process's, start-up included. The import
profile itself slows imports a little, so *wall* is measured in separate runs without it. No
control plane is needed. Bytecode is compiled by a warm-up run per case into a private
``PYTHONPYCACHEPREFIX``, as an installed package has it, so compiling sources is not counted.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._harness import RESULTS_DIR, free_port, load_now, machine_info
from bench._stats import md_table, median

__all__ = ["CASES", "Case", "import_total", "main", "parse_importtime"]

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)\s*$")


@dataclass(frozen=True)
class Case:
    label: str
    argv: tuple[str, ...]  # {python}, {aimctl} and {kubeconfig} are substituted
    expect_exit: int = 0


CASES = (
    Case("`import aimctl.workqueue`", ("{python}", "-c", "import aimctl.workqueue")),
    Case("`import aimctl`", ("{python}", "-c", "import aimctl")),
    Case("`aimctl --help`", ("{aimctl}", "--help")),
    Case(
        "`aimctl run` start-up, up to connecting",
        (
            "{aimctl}",
            "run",
            "--kubeconfig",
            "{kubeconfig}",
            "--no-leader-elect",
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            "0",
            "--log-format",
            "json",
            "--log-level",
            "error",
        ),
        expect_exit=3,  # cluster unreachable: the closed port
    ),
)

# Measured by hand before and after the lazy-import change of 2026-12-03 (the same cases,
# ``-X importtime``), kept for comparison: label -> (before, after) in milliseconds.
EARLIER_MS = {
    "`import aimctl.workqueue`": (446, 79),
    "`import aimctl`": (449, 16),
    "`aimctl --help`": (577, 40),
    "`aimctl run` start-up, up to connecting": (615, 534),
}


def parse_importtime(stderr: str) -> dict[str, int]:
    """Top-level imports (not nested under another) -> cumulative microseconds."""
    out: dict[str, int] = {}
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m is not None and not m.group(3):
            out[m.group(4)] = out.get(m.group(4), 0) + int(m.group(2))
    return out


def import_total(stderr: str, baseline: set[str]) -> float:
    """Seconds of top-level imports outside ``baseline`` (the interpreter's own)."""
    return sum(us for mod, us in parse_importtime(stderr).items() if mod not in baseline) / 1e6


# Where the runs keep aimctl's compiled bytecode (set by ``run``): as an installed package has
# it, so source compilation is not counted (this tree may be run with PYTHONDONTWRITEBYTECODE).
_PYCACHE: dict[str, str] = {}


def _run(argv: Sequence[str], *, profile: bool) -> tuple[float, float, str, int]:
    """(wall s, CPU s of the process, stderr, exit code) of one run."""
    env = {**os.environ, **_PYCACHE}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    if profile:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.stderr.close()
    # wait4, not wait: the child's own rusage (user + system CPU), start-up included.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, stderr, proc.returncode


def _kubeconfig(directory: Path) -> Path:
    from aimctl.envtest._certs import CertificateAuthority
    from aimctl.envtest._kubeconfig import write_kubeconfig

    ca = CertificateAuthority()
    client = ca.issue_client("bench")
    # A port that was free a moment ago: nothing listens, so the connection is refused at once.
    return write_kubeconfig(
        directory / "kubeconfig",
        server=f"https://127.0.0.1:{free_port()}",
        ca_pem=ca.cert_pem,
        cert_pem=client.cert_pem,
        key_pem=client.key_pem,
    )


@dataclass
class Measured:
    imports: float
    wall: float
    cpu: float


def measure(case: Case, subst: dict[str, str], baseline: set[str], repeat: int) -> Measured:
    argv = [a.format(**subst) for a in case.argv]
    _run(argv, profile=False)  # warm-up: compiles and caches the bytecode
    imports, walls, cpus = [], [], []
    for _ in range(repeat):
        _, _, stderr, code = _run(argv, profile=True)
        if code != case.expect_exit:
            raise RuntimeError(f"{' '.join(argv)}: exit {code}, expected {case.expect_exit}")
        imports.append(import_total(stderr, baseline))
        wall, cpu, _, _ = _run(argv, profile=False)
        walls.append(wall)
        cpus.append(cpu)
    return Measured(median(imports), median(walls), median(cpus))


def run(repeat: int) -> str:
    python = sys.executable
    aimctl = str(Path(python).with_name("aimctl"))
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="aimctl-bench-imports-") as tmp:
        subst = {"python": python, "aimctl": aimctl, "kubeconfig": str(_kubeconfig(Path(tmp)))}
        _PYCACHE["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        _, _, bare, _ = _run([python, "-c", "pass"], profile=True)
        baseline = set(parse_importtime(bare))
        bare_runs = [_run([python, "-c", "pass"], profile=False) for _ in range(repeat)]
        rows = []
        for case in CASES:
            m = measure(case, subst, baseline, repeat)
            before, after = EARLIER_MS.get(case.label, (None, None))
            rows.append(
                [
                    case.label,
                    f"{m.imports * 1000:.0f} ms",
                    f"{m.wall * 1000:.0f} ms",
                    f"{m.cpu * 1000:.0f} ms",
                    f"{before} -> {after} ms" if before is not None else "-",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    machine = "; ".join(f"{k} {v}" for k, v in info.items())
    lines = [
        "# Imports: start-up cost",
        "",
        f"`python -m bench.imports --repeat {repeat}`: what starting aimctl costs before it "
        "does anything. Each case is a fresh process, run "
        f"{repeat} times with `-X importtime` (`PYTHONPROFILEIMPORTTIME=1`) and {repeat} times "
        "without it; medians. *Imports*: the summed cumulative time of the top-level imports "
        "the case adds to a bare `python -c pass`, with bytecode compiled beforehand (a warm-up "
        "run per case, as an installed package has it). *Wall* and *CPU* (user + system): the "
        "whole "
        "process, interpreter start-up included, in the runs without the import profile. "
        "`aimctl run` start-up: the console script against a kubeconfig with a real CA and "
        "client certificate whose server is a closed port on 127.0.0.1: it loads everything "
        "it needs, builds its TLS context, tries `GET /version` and exits 3 (unreachable).",
        "",
        f"Machine: {machine}; load after {load_now()}",
        "",
        md_table(
            ["case", "imports", "wall", "CPU", "imports earlier today (before -> after)"], rows
        ),
        "",
        f"A bare `python -c pass` takes {median([r[0] for r in bare_runs]) * 1000:.0f} ms "
        f"wall and {median([r[1] for r in bare_runs]) * 1000:.0f} ms CPU here. "
        "*Earlier today*: the same `-X importtime` cases measured by hand before and after "
        "the lazy imports of 2026-12-03 (subcommands and heavy dependencies imported when "
        "first used).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="runs per case, median kept (5)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "imports.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    report = run(args.repeat)
    print(report, flush=True)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
