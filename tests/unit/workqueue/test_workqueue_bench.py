"""bench.workqueue stays runnable: every queue it compares hands out every key, in every
scenario, on a small key set."""

from __future__ import annotations

import pytest

from bench.workqueue import QUEUES, best_of, peak_memory


@pytest.mark.parametrize(("dup", "workers", "work_yield"), [(1, 1, False), (10, 4, True)])
def test_every_queue_hands_out_every_key(dup: int, workers: int, work_yield: bool) -> None:
    keys = [("default", f"object-{i}") for i in range(2500)]
    cells = best_of(keys, dup, workers, work_yield, repeat=1)
    assert set(cells) == set(QUEUES)
    for cell in cells.values():
        assert cell.handed_out == len(keys)
        assert cell.items_per_s > 0
        assert cell.adds_per_s == pytest.approx(cell.items_per_s * dup)


def test_peak_memory_is_measured() -> None:
    keys = [("default", f"object-{i}") for i in range(1000)]
    assert peak_memory(QUEUES["aimctl"], keys) > 0
