"""LeaderElector pieces that need no server (the algorithm itself runs against a real
kube-apiserver in tests/integration/manager/)."""

from __future__ import annotations

from typing import cast

import pytest

from aimctl.client import RestClient
from aimctl.manager import LeaderElectionConfig, LeaderElector


def test_acquire_jitter_spans_client_go_range() -> None:
    # client-go: wait.JitterUntil(retryPeriod, JitterFactor=1.2) sleeps in [d, 2.2 d).
    elector = LeaderElector(cast(RestClient, None), LeaderElectionConfig("ns", "lock", "me"))
    d = 2.0
    waits = [elector._jittered(d) for _ in range(2000)]
    assert all(d <= w < 2.2 * d for w in waits)
    assert max(waits) > 1.9 * d  # the old range stopped at 1.2 d
    assert min(waits) < 1.1 * d


def test_config_keeps_client_go_invariants() -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig("ns", "lock", "me", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError):
        LeaderElectionConfig("ns", "lock", "me", renew_deadline=2.3, retry_period=2)
    with pytest.raises(ValueError):
        LeaderElectionConfig("ns", "lock", "")
