"""Always-valid monitoring: A/A with a check every round, detection delay vs Wald's SPRT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from canary.stats import (
    SequentialRateMonitor,
    SequentialState,
    baseline_upper_rate,
    expected_sample_size_sprt,
)
from tests.stats.conftest import ALPHA, fp_ceiling

P0, MARGIN, ROUND = 0.002, 0.002, 50


def test_aa_checked_every_round_alarms_at_most_alpha() -> None:
    rng = np.random.default_rng(0)
    seeds, rounds = 300, 200  # 10,000 probes each, 200 looks
    alarms = 0
    for _ in range(seeds):
        m = SequentialRateMonitor(P0, MARGIN, ALPHA)
        for k in rng.binomial(ROUND, P0, rounds):
            if m.update(int(k), ROUND).alarm:
                alarms += 1
                break
    print(f"A/A sequential: {alarms / seeds:.3f} alarmed over {rounds} looks (α={ALPHA})")
    assert alarms / seeds <= fp_ceiling(seeds)


def test_a_0_8_percent_increase_is_detected_near_wald() -> None:
    rng = np.random.default_rng(1)
    p1 = P0 + 0.008
    delays: list[int] = []
    for _ in range(200):
        m = SequentialRateMonitor(P0, MARGIN, ALPHA)
        while not m.update(int(rng.binomial(10, p1)), 10).alarm:
            assert m.n_total < 20_000
        delays.append(m.n_total)
    wald = expected_sample_size_sprt(P0, p1, ALPHA, 0.2)
    mean = float(np.mean(delays))
    print(
        f"0.8% increase: mean probes-to-detect {mean:.0f}, Wald E[N] {wald:.0f}, "
        f"ratio {mean / wald:.2f}"
    )
    # power-one monitoring + rare-event overshoot cost ~2x of Wald's two-boundary SPRT
    assert mean <= 3 * wald


def test_state_round_trips_through_json_and_latches() -> None:
    m = SequentialRateMonitor(P0, MARGIN, ALPHA)
    m.update(5, 100)
    again = SequentialRateMonitor.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again.state == m.state and again.state.alarm
    assert again.update(0, 10_000).alarm  # latched
    s = again.state
    assert SequentialState.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    again.reset()
    assert not again.state.alarm and again.state.p_value == 1.0


def test_inputs_are_checked_and_baseline_bound() -> None:
    with pytest.raises(ValueError):
        SequentialRateMonitor(0.5, 0.6)
    with pytest.raises(ValueError):
        SequentialRateMonitor(P0, MARGIN).update(3, 2)
    assert baseline_upper_rate(0, 5000) == pytest.approx(3 / 5000, rel=0.01)
