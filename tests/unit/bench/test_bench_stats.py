"""The benchmarks' arithmetic: percentiles, Prometheus parsing, request deltas, tables."""

from __future__ import annotations

from collections import Counter

import pytest

from bench._stats import (
    RequestKey,
    by_verb,
    counter_delta,
    fmt_bytes,
    fmt_ratio,
    fmt_seconds,
    md_table,
    median,
    metric_sum,
    named_counts,
    open_watches,
    parse_samples,
    percentile,
    request_counts,
    subtract,
)

METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",\
resource="statefulsets",scope="resource",subresource="",verb="APPLY",version="v1"} 7
apiserver_request_total{code="201",component="apiserver",dry_run="",group="apps",\
resource="statefulsets",scope="resource",subresource="",verb="APPLY",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="aim.silogen.ai",\
resource="aimkvcaches",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2
apiserver_request_total{code="200",component="",dry_run="",group="",resource="",scope="",\
subresource="/readyz",verb="GET",version=""} 1
# HELP rest_client_requests_total Number of HTTP requests.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="h:1",method="PATCH"} 4.0
rest_client_requests_total{code="201",host="h:1",method="POST"} 1.0
"""

STS_APPLY = RequestKey("APPLY", "apps", "statefulsets", "")
STATUS_PATCH = RequestKey("PATCH", "aim.silogen.ai", "aimkvcaches", "status")
READYZ = RequestKey("GET", "", "", "/readyz")


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 99) == pytest.approx(3.97)


def test_percentile_does_not_need_sorted_input() -> None:
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([0.25], 99) == 0.25


@pytest.mark.parametrize("q", [-1, 101])
def test_percentile_rejects_q_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], q)


def test_percentile_and_median_reject_no_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_median_of_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_request_counts_sum_codes_per_verb_and_resource() -> None:
    counts = request_counts(parse_samples(METRICS))
    assert counts[STS_APPLY] == 10
    assert counts[STATUS_PATCH] == 2
    assert counts[READYZ] == 1
    assert len(counts) == 3


def test_request_key_names_the_subresource() -> None:
    assert STATUS_PATCH.kind == "aimkvcaches/status"
    assert STS_APPLY.kind == "statefulsets"
    assert READYZ.kind == "(non-resource /readyz)"


def test_metric_sum_filters_by_labels() -> None:
    samples = parse_samples(METRICS)
    assert metric_sum(samples, "rest_client_requests_total") == 5
    assert metric_sum(samples, "rest_client_requests_total", {"method": "PATCH"}) == 4
    assert metric_sum(samples, "rest_client_requests_total", {"method": "DELETE"}) == 0


def test_counter_delta_counts_new_keys_from_zero_and_drops_unchanged() -> None:
    before = {STS_APPLY: 10, STATUS_PATCH: 2}
    after = {STS_APPLY: 15, STATUS_PATCH: 2, READYZ: 3}
    assert counter_delta(before, after) == Counter({STS_APPLY: 5, READYZ: 3})


def test_counter_delta_refuses_a_counter_that_went_down() -> None:
    with pytest.raises(ValueError, match="decreased"):
        counter_delta({STS_APPLY: 10}, {STS_APPLY: 4})


def test_subtract_takes_out_own_requests_floored_at_zero() -> None:
    total = {STS_APPLY: 5, READYZ: 1}
    own = {READYZ: 2, STATUS_PATCH: 1}
    assert subtract(total, own) == Counter({STS_APPLY: 5})


def test_by_verb_skips_non_resource_urls_and_excluded_resources() -> None:
    counts = {
        STS_APPLY: 5,
        STATUS_PATCH: 2,
        READYZ: 9,
        RequestKey("PUT", "coordination.k8s.io", "leases", ""): 4,
    }
    assert by_verb(counts, exclude=["leases"]) == Counter({"APPLY": 5, "PATCH": 2})
    assert by_verb(counts, resources=["aimkvcaches"]) == Counter({"PATCH": 2})


def test_md_table_right_aligns_numeric_columns() -> None:
    table = md_table(["peer", "time", "ratio"], [["aimctl", "1.20 s", "0.50x"], ["kopf", "-", "-"]])
    assert table.splitlines() == [
        "| peer | time | ratio |",
        "|---|---:|---:|",
        "| aimctl | 1.20 s | 0.50x |",
        "| kopf | - | - |",
    ]


def test_md_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        md_table(["a", "b", "c"], [["1", "2"]])


def test_formatters() -> None:
    assert fmt_seconds(0.0123) == "12 ms"
    assert fmt_seconds(1.234) == "1.23 s"
    assert fmt_seconds(12.34) == "12.3 s"
    assert fmt_seconds(None) == "-"
    assert fmt_bytes(3 * 2**20) == "3 MiB"
    assert fmt_ratio(1.0, 4.0) == "0.25x"
    assert fmt_ratio(1.0, 0.0) == "-"
    assert fmt_ratio(None, 1.0) == "-"


def test_open_watches_reads_the_long_running_gauge_for_watches_only() -> None:
    text = """\
# TYPE apiserver_longrunning_requests gauge
apiserver_longrunning_requests{component="apiserver",group="apps",resource="statefulsets",\
scope="namespace",subresource="",verb="WATCH",version="v1"} 2
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",\
scope="namespace",subresource="log",verb="CONNECT",version="v1"} 1
"""
    assert open_watches(parse_samples(text)) == Counter(
        {RequestKey("WATCH", "apps", "statefulsets", ""): 2}
    )


def test_named_counts_sum_over_groups_and_leave_out_watches_and_excluded() -> None:
    counts = {
        RequestKey("POST", "", "events", ""): 30,
        RequestKey("POST", "events.k8s.io", "events", ""): 1,
        RequestKey("WATCH", "apps", "statefulsets", ""): 2,
        RequestKey("POST", "", "leases", ""): 7,
        STATUS_PATCH: 4,
        READYZ: 1,
    }
    assert named_counts(counts, exclude=["leases"]) == {
        "POST events": 31,
        "PATCH aimkvcaches/status": 4,
    }
    assert named_counts(counts, exclude=["leases"], watches=True)["WATCH statefulsets"] == 2
