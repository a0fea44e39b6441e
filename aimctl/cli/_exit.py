"""The exit codes of every ``aimctl`` command, as one enum.

``aimctl run`` exits with them (a supervisor or ``aimctl dev`` tells the causes apart without
reading logs); the other commands use ``OK``, ``ERROR`` (a :class:`click.ClickException`) and
``USAGE`` (a :class:`click.UsageError`), which are click's own numbers.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """Why a command ended. ``str(code)`` is the meaning, as docs/architecture.md lists it."""

    OK = 0
    ERROR = 1
    USAGE = 2
    UNREACHABLE = 3
    NO_CRDS = 4
    SYNC = 5
    LEADERSHIP = 6

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]

    @classmethod
    def describe(cls, code: int | None) -> str:
        """``"4 (AIM CRDs not installed)"`` for a known code, else just the number."""
        if code is None:
            return "no exit code"
        try:
            return f"{code} ({cls(code).meaning})"
        except ValueError:
            return str(code) if code >= 0 else f"{code} (killed by signal {-code})"


_MEANINGS = {
    ExitCode.OK: "clean shutdown",
    ExitCode.ERROR: "the command failed",
    ExitCode.USAGE: "bad flags",
    ExitCode.UNREACHABLE: "cluster unreachable or credentials refused",
    ExitCode.NO_CRDS: "AIM CRDs not installed",
    ExitCode.SYNC: "caches did not sync (usually RBAC)",
    ExitCode.LEADERSHIP: "leader election lost",
}
