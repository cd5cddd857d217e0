"""CUSUM change detection: false-alarm run length vs Lorden's bound, detection delay vs the oracle,
no dilution by a long healthy history, the onset estimate, and the stored state."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from canary.stats import (
    CusumRateDetector,
    CusumState,
    arl_for_false_alarms,
    cusum_threshold,
    oracle_detection_probes,
    recovery_log_lr,
)
from canary.stats.sequential import bernoulli_kl

T0 = datetime(2025, 1, 1, tzinfo=UTC)
EVERY = timedelta(minutes=5)
ROUND = 20
ARL = 1e5
"""ARL target of the detection tests, in rounds: about a year of 5-minute rounds."""


def at(i: int) -> datetime:
    return T0 + i * EVERY


def rounds_to_alarm(
    d: CusumRateDetector, p: float, n: int, rng: np.random.Generator, start: int, cap: int
) -> int:
    """Rounds at rate ``p`` until ``d`` alarms (``cap`` if it never does)."""
    r = 0
    while r < cap:
        for k in rng.binomial(n, p, min(256, cap - r)).tolist():
            r += 1
            if d.update(k, n, at(start + r - 1)).alarm:
                return r
    return cap


@pytest.mark.parametrize(
    ("p0", "margin", "n"), [(0.001, 0.002, 20), (0.05, 0.05, 20), (0.2, 0.4, 1)]
)
def test_false_alarm_run_length_is_at_least_the_arl_bound(p0: float, margin: float, n: int) -> None:
    rng = np.random.default_rng(0)
    target, reps, cap = 200, 200, 1000
    # runs are cut at `cap` rounds: the mean of min(N, cap) is a lower bound of E[N]
    runs = np.array(
        [
            rounds_to_alarm(CusumRateDetector.for_arl(p0, margin, target), p0, n, rng, 0, cap)
            for _ in range(reps)
        ]
    )
    low = runs.mean() - 3 * runs.std(ddof=1) / math.sqrt(reps)
    msg = (
        f"p0={p0}, margin={margin}, round={n}: mean run length ≥ {runs.mean():.0f} rounds "
        f"(cut at {cap}, {np.mean(runs == cap):.0%} never alarmed), bound {target}"
    )
    print(msg)
    assert low >= target, msg


def test_a_long_healthy_history_does_not_delay_detection() -> None:
    rng = np.random.default_rng(1)
    p0, margin, p1, reps = 0.002, 0.002, 0.01, 200
    fresh = np.array(
        [
            rounds_to_alarm(CusumRateDetector.for_arl(p0, margin, ARL), p1, ROUND, rng, 0, 5000)
            for _ in range(reps)
        ]
    )
    # one healthy chain of 10,000 rounds, then a change forked from it every 25 rounds (CUSUM
    # returns to zero within a few rounds under H0, so the forks are close to independent)
    chain = CusumRateDetector.for_arl(p0, margin, ARL)
    i = 0
    aged = []
    while len(aged) < reps:
        chain.update(int(rng.binomial(ROUND, p0)), ROUND, at(i))
        i += 1
        if i >= 10_000 and i % 25 == 0 and not chain.state.alarm:
            fork = CusumRateDetector.from_dict(chain.to_dict())
            aged.append(rounds_to_alarm(fork, p1, ROUND, rng, i, 5000))
    aged_arr = np.array(aged)
    msg = (
        f"mean rounds to detect {p0} → {p1}: fresh {fresh.mean():.1f} "
        f"(median {np.median(fresh):.0f}), after ≥10,000 healthy rounds {aged_arr.mean():.1f} "
        f"(median {np.median(aged_arr):.0f})"
    )
    print(msg)
    assert abs(aged_arr.mean() / fresh.mean() - 1) <= 0.15, msg
    assert abs(np.median(aged_arr) / np.median(fresh) - 1) <= 0.2, msg


def test_detection_delay_is_within_twice_the_oracle() -> None:
    rng = np.random.default_rng(2)
    ratios = {}
    # p1 on a grid point and between two grid points (2p0, 3p0, 5p0, 9p0, …)
    for p0, p1 in [(0.002, 0.008), (0.002, 0.01), (0.01, 0.03), (0.05, 0.1), (0.05, 0.2)]:
        d = CusumRateDetector.for_arl(p0, p0, ARL)
        probes = []
        for _ in range(200):
            d.reset()
            probes.append(ROUND * rounds_to_alarm(d, p1, ROUND, rng, 0, 100_000))
        ratios[(p0, p1)] = float(np.mean(probes)) / oracle_detection_probes(p0, p1, d.threshold)
    msg = "mean probes to detect / oracle: " + ", ".join(
        f"{p0}→{p1}: {r:.2f}" for (p0, p1), r in ratios.items()
    )
    print(msg)
    assert all(0.5 <= r <= 2 for r in ratios.values()), msg


@pytest.mark.parametrize(("p0", "p1", "n"), [(0.002, 0.01, 20), (0.01, 0.05, 50)])
def test_onset_points_at_the_change_and_the_segment_estimates_the_new_rate(
    p0: float, p1: float, n: int
) -> None:
    rng = np.random.default_rng(3)
    change, reps = 300, 300
    errors, delays, rates = [], [], []
    for _ in range(reps):
        d = CusumRateDetector.for_arl(p0, p0, ARL)
        for i in range(change):
            d.update(int(rng.binomial(n, p0)), n, at(i))
        delay = rounds_to_alarm(d, p1, n, rng, change, 100_000)
        s = d.state
        assert s.alarm and s.onset is not None and s.rate is not None
        errors.append((s.onset - at(change)) / EVERY)
        delays.append(delay)
        rates.append(s.rate)
    err, rel = np.array(errors), np.abs(errors) / np.array(delays)
    msg = (
        f"{p0} → {p1}, {n}/round: onset − change in rounds, quantiles 10/50/90% "
        f"{np.percentile(err, [10, 50, 90])}, mean delay {np.mean(delays):.1f} rounds; "
        f"{np.mean(rel <= 0.25):.0%} within a quarter of the delay (median {np.median(rel):.2f}); "
        f"median segment rate {np.median(rates):.4f}"
    )
    print(msg)
    # a change is located to within the resolution the flags allow: a fraction of the delay
    assert np.mean(rel <= 0.25) >= 0.6, msg
    assert np.median(rel) <= 0.15, msg
    # the segment ends when evidence crosses the threshold, so its rate is biased upwards a bit
    assert 0.8 * p1 <= np.median(rates) <= 1.5 * p1, msg


def test_segments_start_continue_and_clear_round_by_round() -> None:
    p0, margin = 0.01, 0.01
    d = CusumRateDetector(p0, margin, threshold=5.0)
    p = d.alternatives
    assert p == pytest.approx([0.02, 0.03, 0.05, 0.09, 0.17, 0.33, 0.65])

    def llr(k: int, n: int, pj: float) -> float:
        return k * math.log(pj / p0) + (n - k) * math.log((1 - pj) / (1 - p0))

    s = d.update(0, 10, at(0))  # healthy: everything stays at zero
    assert s.score == 0 and s.onset is None and (s.k_seg, s.n_seg, s.rate) == (0, 0, None)
    s = d.update(1, 2, at(1))  # a flag makes every C_j positive: segments start here
    assert d.scores == pytest.approx([llr(1, 2, pj) for pj in p])
    assert set(d.segment_starts) == {at(1)} and d.k_segs == [1] * 7 and d.n_segs == [2] * 7
    s = d.update(0, 5, at(2))  # C_j stays positive for the small alternatives: they continue
    for j in range(6):
        assert d.scores[j] == pytest.approx(llr(1, 2, p[j]) + llr(0, 5, p[j]))
        assert (d.segment_starts[j], d.k_segs[j], d.n_segs[j]) == (at(1), 1, 7)
    # the largest is brought to ≤ 0: cleared
    assert (d.scores[6], d.segment_starts[6], d.k_segs[6], d.n_segs[6]) == (0, None, 0, 0)
    assert s == CusumState(
        score=pytest.approx(llr(1, 2, 0.17) + llr(0, 5, 0.17)),
        threshold=5.0,
        alarm=False,
        alternative=pytest.approx(0.17),
        onset=at(1),
        k_seg=1,
        n_seg=7,
        rate=1 / 7,
        rounds=3,
        pending=False,
    )
    s = d.update(0, 0, at(3))  # an empty round changes nothing but the count
    assert (s.onset, s.n_seg, s.rounds) == (at(1), 7, 4) and s.score == d.scores[4]
    s = d.update(6, 10, at(4))  # the cleared alternative restarts here, and now leads
    assert d.segment_starts == [at(1)] * 6 + [at(4)]
    assert s.alarm and s.pending and s.alternative == pytest.approx(0.65)
    assert (s.onset, s.k_seg, s.n_seg, s.rate) == (at(4), 6, 10, 0.6)
    assert s.score == pytest.approx(llr(6, 10, 0.65))
    d.reset()
    assert d.state.score == 0 and d.state.rounds == 0 and d.state.onset is None


def test_state_round_trips_through_json_and_keeps_behaving_the_same() -> None:
    rng = np.random.default_rng(4)
    a = CusumRateDetector.for_arl(0.01, 0.01, 1000)
    for i in range(50):
        a.update(int(rng.binomial(20, 0.03)), 20, at(i))
    stored = json.loads(json.dumps(a.to_dict()))
    b = CusumRateDetector.from_dict(stored)
    assert b == a and b.state == a.state
    for i in range(50, 300):
        k = int(rng.binomial(20, 0.02))
        assert a.update(k, 20, at(i)) == b.update(k, 20, at(i))
    assert stored == json.loads(json.dumps(CusumRateDetector.from_dict(stored).to_dict()))
    s = b.state
    assert CusumState.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="baseline_upper_rate"):
        CusumRateDetector(0.0, 0.01, 10.0)
    for p0, margin in [(-0.1, 0.01), (1.0, 0.01), (0.01, 0.0), (0.5, 0.5)]:
        with pytest.raises(ValueError):
            CusumRateDetector(p0, margin, 10.0)
    with pytest.raises(ValueError, match="threshold"):
        CusumRateDetector(0.01, 0.01, 0.0)
    with pytest.raises(ValueError, match="ratio"):
        CusumRateDetector(0.01, 0.01, 10.0, ratio=1.0)
    d = CusumRateDetector(0.01, 0.01, 10.0)
    for k, n in [(3, 2), (-1, 5)]:
        with pytest.raises(ValueError, match="0 ≤ k ≤ n"):
            d.update(k, n, T0)
    with pytest.raises(ValueError, match="one entry per alternative"):
        CusumRateDetector.from_dict({**d.to_dict(), "scores": [0.0]})


def test_grid_threshold_and_arl() -> None:
    assert len(CusumRateDetector(0.001, 0.001, 10.0).alternatives) == 8  # capped
    assert CusumRateDetector(0.2, 0.3, 10.0).alternatives == pytest.approx((0.5, 0.8))
    assert cusum_threshold(1000, 8) == pytest.approx(math.log(8000))
    assert cusum_threshold(1000, 1) == pytest.approx(6.9078, abs=1e-4)
    d = CusumRateDetector.for_arl(0.01, 0.01, 1e6)
    assert d.threshold == pytest.approx(math.log(7e6))
    # 200 monitors, a round every 5 minutes, at most one false alert a year for the fleet
    assert arl_for_false_alarms(1, 105_120, 200) == pytest.approx(21_024_000)
    assert arl_for_false_alarms(4, 105_120, 200) == pytest.approx(5_256_000)
    assert oracle_detection_probes(0.01, 0.03, 12.0) == pytest.approx(
        12.0 / bernoulli_kl(0.03, 0.01)
    )
    with pytest.raises(ValueError):
        cusum_threshold(0.5, 3)
    with pytest.raises(ValueError):
        oracle_detection_probes(0.03, 0.01, 12.0)


def test_recovery_evidence_sign_and_size() -> None:
    p0, bad = 0.002, 0.01
    # a clean stretch is evidence for recovery; a stretch at the bad rate against it
    clean = recovery_log_lr(0, 1000, p0, bad)
    assert clean == pytest.approx(1000 * math.log(0.998 / 0.99))
    assert clean > 0 and recovery_log_lr(10, 1000, p0, bad) < 0
    assert recovery_log_lr(10, 1000, p0, bad) == pytest.approx(
        10 * math.log(p0 / bad) + 990 * math.log(0.998 / 0.99)
    )
    # on average, KL(p0 ‖ p_bad) nats per probe when healthy, −KL(p_bad ‖ p0) when not
    rng = np.random.default_rng(5)
    n = 200_000
    assert recovery_log_lr(int(rng.binomial(n, p0)), n, p0, bad) / n == pytest.approx(
        bernoulli_kl(p0, bad), rel=0.1
    )
    assert recovery_log_lr(int(rng.binomial(n, bad)), n, p0, bad) / n == pytest.approx(
        -bernoulli_kl(bad, p0), rel=0.1
    )
    with pytest.raises(ValueError):
        recovery_log_lr(0, 10, 0.0, bad)
