"""Statistics over stored scores: two-sample tests against baselines with effect
sizes and FDR control, verdicts and the gate, and always-valid sequential monitoring, and
CUSUM change detection for the daemon."""

# kinds first: it registers the metric kinds and hands policies their direction lookup.
from canary.stats import kinds as _kinds  # noqa: F401  (isort: skip)
from canary.stats.continuous import compare_continuous_binned, compare_continuous_samples
from canary.stats.cusum import (
    CusumRateDetector,
    CusumState,
    arl_for_false_alarms,
    cusum_alternatives,
    cusum_threshold,
    oracle_detection_probes,
    recovery_log_lr,
)
from canary.stats.distributions import compare_distributions
from canary.stats.multiple import FdrMethod, adjust_pvalues
from canary.stats.policy import (
    DEFAULT_BINNING,
    DEFAULT_POLICIES,
    Binning,
    Direction,
    MetricKind,
    MetricPolicy,
    histogram_counts,
    histogram_edges,
    policy_for,
)
from canary.stats.power import mde_rate, mde_shift, mde_w, required_n
from canary.stats.rates import compare_rates
from canary.stats.result import TestResult
from canary.stats.sequential import (
    SequentialRateMonitor,
    SequentialState,
    baseline_upper_rate,
    expected_sample_size_power_one,
    expected_sample_size_sprt,
)
from canary.stats.verdicts import (
    EXIT_CODES,
    GateResult,
    GateStatus,
    MetricVerdict,
    Verdict,
    decide,
    evaluate,
    gate,
)

__all__ = [
    "DEFAULT_BINNING",
    "DEFAULT_POLICIES",
    "EXIT_CODES",
    "Binning",
    "CusumRateDetector",
    "CusumState",
    "Direction",
    "FdrMethod",
    "GateResult",
    "GateStatus",
    "MetricKind",
    "MetricPolicy",
    "MetricVerdict",
    "SequentialRateMonitor",
    "SequentialState",
    "TestResult",
    "Verdict",
    "adjust_pvalues",
    "arl_for_false_alarms",
    "baseline_upper_rate",
    "compare_continuous_binned",
    "compare_continuous_samples",
    "compare_distributions",
    "compare_rates",
    "cusum_alternatives",
    "cusum_threshold",
    "decide",
    "evaluate",
    "expected_sample_size_power_one",
    "expected_sample_size_sprt",
    "gate",
    "histogram_counts",
    "histogram_edges",
    "mde_rate",
    "mde_shift",
    "mde_w",
    "oracle_detection_probes",
    "policy_for",
    "recovery_log_lr",
    "required_n",
]
