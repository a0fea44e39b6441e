"""Status conditions (metav1.Condition) on plain dicts.

Guarantees, as apimachinery's ``meta.SetStatusCondition``:
- one condition per ``type``; setting a type replaces its fields in place (order is kept);
- ``lastTransitionTime`` changes only when ``status`` changes, so it tells users when the
  condition last flipped, not when the controller last looked;
- ``observedGeneration`` records the generation the condition was computed from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["ConditionStatus", "find_condition", "is_condition_true", "now_rfc3339", "set_condition"]

ConditionStatus = Literal["True", "False", "Unknown"]


def now_rfc3339() -> str:
    """The current time as Kubernetes writes ``metav1.Time`` (second precision, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _valid(conditions: object) -> list[Mapping[str, Any]]:
    # Stored objects may carry garbage (written before a schema change): ignore what is not a
    # list of objects rather than crash on it.
    if not isinstance(conditions, list | tuple):
        return []
    # dict first: cached conditions are dict subclasses, for which the Mapping check alone
    # takes the slower ABCMeta path (this runs several times per reconcile).
    return [c for c in conditions if isinstance(c, (dict, Mapping))]


def find_condition(
    conditions: Sequence[Mapping[str, Any]] | None, type_: str
) -> Mapping[str, Any] | None:
    for c in _valid(conditions):
        if c.get("type") == type_:
            return c
    return None


def is_condition_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    c = find_condition(conditions, type_)
    return c is not None and c.get("status") == "True"


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    observed_generation: int | None = None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return a new condition list with ``type_`` set; the input is not modified.

    ``now`` (RFC 3339) is used as ``lastTransitionTime`` only when the status changes or the
    condition is new.
    """
    out: list[dict[str, Any]] = []
    found = False
    for c in _valid(conditions):
        if c.get("type") != type_:
            out.append(dict(c))
            continue
        found = True
        changed = c.get("status") != status
        new = {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": (now or now_rfc3339())
            if changed or not c.get("lastTransitionTime")
            else c["lastTransitionTime"],
        }
        if observed_generation is not None:
            new["observedGeneration"] = observed_generation
        out.append(new)
    if not found:
        new = {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now or now_rfc3339(),
        }
        if observed_generation is not None:
            new["observedGeneration"] = observed_generation
        out.append(new)
    return out
