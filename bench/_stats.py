"""Pure helpers of the benchmarks: percentiles, Prometheus text, request deltas, markdown.

Nothing here performs I/O, so all of it is unit-tested (``tests/unit/bench/``).

Request accounting: the API server's own ``apiserver_request_total`` counts every request it
served, whoever sent it, so it measures aimctl, kopf and the ceiling with one ruler. A
benchmark scrapes it before and after a window; the delta minus the requests the harness made
itself (its :class:`RequestKey` ledger) is what the peer under test sent. Watches are
long-running requests: the server counts one when it *ends*, so a watch still open at the end
of a window is not in that window's delta.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "READ_VERBS",
    "WRITE_VERBS",
    "RequestKey",
    "Sample",
    "by_verb",
    "counter_delta",
    "fmt_bytes",
    "fmt_ratio",
    "fmt_seconds",
    "md_table",
    "median",
    "metric_sum",
    "named_counts",
    "open_watches",
    "parse_samples",
    "percentile",
    "request_counts",
    "subtract",
]

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
READ_VERBS = frozenset({"GET", "LIST", "WATCH"})


class Sample(NamedTuple):
    name: str
    labels: Mapping[str, str]
    value: float


class RequestKey(NamedTuple):
    """One row of ``apiserver_request_total`` with the code and scope summed away.

    ``verb`` is the server's verb: ``GET`` of one object, ``LIST``, ``WATCH``, ``POST``,
    ``PATCH`` (merge, JSON, strategic), ``APPLY`` (server-side apply), ``PUT``, ``DELETE``.
    ``resource`` is empty for non-resource URLs (discovery, ``/metrics``, ``/readyz``).
    """

    verb: str
    group: str
    resource: str
    subresource: str

    @property
    def kind(self) -> str:
        """``resource[/subresource]``, e.g. ``aimkvcaches/status``."""
        if not self.resource:
            return f"(non-resource {self.subresource})"
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks
    (numpy's default). Raises ValueError on an empty sequence or q outside [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def parse_samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition, with its full sample name
    (``x_total``, ``x_bucket``, ...)."""
    out: list[Sample] = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append(Sample(s.name, dict(s.labels), float(s.value)))
    return out


def metric_sum(
    samples: Iterable[Sample], name: str, labels: Mapping[str, str] | None = None
) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    want = labels or {}
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in want.items())
    )


def request_counts(samples: Iterable[Sample]) -> Counter[RequestKey]:
    """``apiserver_request_total`` by (verb, group, resource, subresource), codes summed."""
    out: Counter[RequestKey] = Counter()
    for s in samples:
        if s.name != "apiserver_request_total":
            continue
        key = RequestKey(
            s.labels.get("verb", ""),
            s.labels.get("group", ""),
            s.labels.get("resource", ""),
            s.labels.get("subresource", ""),
        )
        out[key] += int(s.value)
    return out


def open_watches(samples: Iterable[Sample]) -> Counter[RequestKey]:
    """Watches the server is serving right now (``apiserver_longrunning_requests``, a gauge),
    by resource. Streaming lists (``sendInitialEvents=true``) are watches too."""
    out: Counter[RequestKey] = Counter()
    for s in samples:
        if s.name != "apiserver_longrunning_requests" or s.labels.get("verb") != "WATCH":
            continue
        key = RequestKey("WATCH", s.labels.get("group", ""), s.labels.get("resource", ""), "")
        out[key] += int(s.value)
    return out


def counter_delta(
    before: Mapping[RequestKey, int], after: Mapping[RequestKey, int]
) -> Counter[RequestKey]:
    """``after - before`` per key (keys new in ``after`` count from 0). A counter that went
    down (the server restarted) raises ValueError rather than reporting a negative count."""
    out: Counter[RequestKey] = Counter()
    for key, value in after.items():
        d = value - before.get(key, 0)
        if d < 0:
            raise ValueError(f"counter {key} decreased from {before.get(key)} to {value}")
        if d:
            out[key] = d
    return out


def subtract(total: Mapping[RequestKey, int], own: Mapping[RequestKey, int]) -> Counter[RequestKey]:
    """``total - own`` per key, floored at 0 (the harness's own requests taken out)."""
    out: Counter[RequestKey] = Counter()
    for key, value in total.items():
        d = value - own.get(key, 0)
        if d > 0:
            out[key] = d
    return out


def by_verb(
    counts: Mapping[RequestKey, int],
    *,
    resources: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> Counter[str]:
    """Totals per verb. ``resources`` keeps only those resources (``None``: all resource
    requests); ``exclude`` drops resources; non-resource URLs are always left out."""
    keep = set(resources) if resources is not None else None
    drop = set(exclude)
    out: Counter[str] = Counter()
    for key, value in counts.items():
        if not key.resource or key.resource in drop:
            continue
        if keep is not None and key.resource not in keep:
            continue
        out[key.verb] += value
    return out


def named_counts(
    counts: Mapping[RequestKey, int], *, exclude: Iterable[str] = (), watches: bool = False
) -> dict[str, int]:
    """``{"VERB resource[/subresource]": n}``, summed over API groups (core and
    ``events.k8s.io`` Events are both ``events``); non-resource URLs, ``exclude`` d resources
    and (unless ``watches``) WATCH requests are left out."""
    drop = set(exclude)
    out: Counter[str] = Counter()
    for key, value in counts.items():
        if not key.resource or key.resource in drop or (key.verb == "WATCH" and not watches):
            continue
        out[f"{key.verb} {key.kind}"] += value
    return dict(out)


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table; numbers are right-aligned."""
    cells = [[str(c) for c in r] for r in rows]
    for r in cells:
        if len(r) != len(headers):
            raise ValueError(f"row {r} has {len(r)} cells, expected {len(headers)}")

    def numeric(col: int) -> bool:
        column = [r[col] for r in cells if r[col] not in ("", "-")]
        return bool(column) and all(_looks_numeric(c) for c in column)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def _looks_numeric(cell: str) -> bool:
    stripped = cell.replace(",", "").replace("x", "").replace("%", "").replace(" ", "")
    for suffix in ("ms", "MiB", "GiB", "KiB", "/s", "s"):
        stripped = stripped.removesuffix(suffix)
    stripped = stripped.lstrip("≈~<>").replace("**", "")
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:.0f} MiB"


def fmt_ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``0.42x`` ("-" when either is missing or b is 0)."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"
