from __future__ import annotations

from canary.detectors.determinism import summarize_repeats


def test_identical_repeats() -> None:
    summary = summarize_repeats(["4", "4", "4"])
    assert (summary.repeats, summary.distinct, summary.majority_share) == (3, 1, 1.0)
    assert not any(s.flagged for s in summary.to_scores(expect_identical=True))


def test_divergent_repeats_and_failed_requests() -> None:
    summary = summarize_repeats(["4", "four", None, "4", "5"])
    assert summary.repeats == 4 and summary.distinct == 3
    assert summary.majority_share == 0.5 and summary.majority_output == "4"
    assert summary.variants[0] == ("4", 2)
    distinct, share = summary.to_scores(expect_identical=True)
    assert distinct.metric == "distinct_outputs" and distinct.value == 3.0 and distinct.flagged
    assert distinct.evidence is not None and distinct.evidence["repeats"] == 4
    assert share.value == 0.5
    assert not summary.to_scores()[0].flagged


def test_no_outputs() -> None:
    summary = summarize_repeats([None, None])
    assert summary.distinct == 0 and summary.majority_share is None
