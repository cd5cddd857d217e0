"""Policies are strict config; bins are fixed per metric."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from canary.stats import (
    DEFAULT_POLICIES,
    MetricPolicy,
    histogram_counts,
    histogram_edges,
    policy_for,
)


def test_defaults_cover_canarys_metrics_and_are_strict() -> None:
    assert DEFAULT_POLICIES["unexpected_script"].critical
    assert DEFAULT_POLICIES["top1_agreement"].direction == "lower_is_worse"
    with pytest.raises(ValidationError):
        MetricPolicy(metric="x", kind="rate", margin=0.1, treshold=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="two_sided"):
        MetricPolicy(metric="x", kind="rate", margin=0.1, direction="two_sided")


def test_fallback_policy_and_edges() -> None:
    p = policy_for("brand_new", scale=2.0)
    assert (p.kind, p.direction, p.margin) == ("continuous", "two_sided", pytest.approx(0.2))
    assert histogram_edges("char_entropy") == histogram_edges("char_entropy")
    edges = histogram_edges("x", 0.0, 1.0, bins=4)
    assert histogram_counts(edges, [-5, 0.1, 0.25, 0.99, 7, float("nan")]) == [2, 1, 0, 2]
    with pytest.raises(ValueError, match="lo and hi"):
        histogram_edges("unknown")
