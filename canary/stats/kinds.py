"""The statistical test of each metric kind: its sufficient statistics, their SQL source, the test.

A metric kind (``rate``, ``continuous``, ``distribution``, …) is one `StatTest` registered in
`stat_tests`: the value that summarises a metric for one cohort (`MetricStats`: flag counts, a
fixed-bin histogram, category counts), which store aggregation fills it (`aggregation`, a key of
`canary.store.aggregates.AGGREGATIONS`), how two of them are tested, and which verdicts the kind
can have. Adding a kind is one `StatTest` subclass (here, or in a plugin through the
``canary.stat_tests`` entry-point group); compare, baselines and reports dispatch through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from canary.registry import Registry
from canary.stats.binning import Binning
from canary.stats.policy import MetricPolicy, install_direction_lookup
from canary.stats.result import TestResult


class Incomparable(ValueError):
    """Two statistics of one metric cannot be tested against each other (e.g. other bins)."""


@dataclass
class MetricStats:
    """One metric of one cohort: what its kind's test needs, nothing more.

    Stored in baselines as JSON (`to_json`); ``fingerprints`` are the detector versions behind
    the numbers, so a comparison refuses scores made differently.
    """

    kind: ClassVar[str]
    fingerprints: set[str] = field(default_factory=set)
    n: int = 0
    """Observations summarised (results, scores or samples)."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "fingerprints": sorted(self.fingerprints), **self._fields()}

    def _fields(self) -> dict[str, Any]:
        return {"n": self.n}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricStats:
        """The statistics of ``data["kind"]``, read by that kind's class."""
        return stat_tests.get(str(data["kind"])).stats.read(data)

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> MetricStats:
        return cls(fingerprints=set(data.get("fingerprints", [])), n=int(data.get("n", 0)))

    def flag_counts(self) -> tuple[int, int] | None:
        """(flagged, total) when the kind counts flags (rates), else None."""
        return None

    def describe(self) -> str:
        """One short line for `canary baseline show`."""
        return f"{self.n} observations"


@dataclass
class RateCounts(MetricStats):
    """Flagged of scored results, and the same counted in sessions."""

    kind: ClassVar[str] = "rate"
    k: int = 0
    session_k: int = 0
    """Sessions with at least one flagged result (a session is the independent unit: sticky
    routing sends all of a session's requests to one pool)."""
    session_n: int = 0
    """Sessions with at least one scored result."""

    def _fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {"k": self.k, "n": self.n}
        if self.session_n:
            data.update(session_k=self.session_k, session_n=self.session_n)
        return data

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> RateCounts:
        return cls(
            fingerprints=set(data.get("fingerprints", [])),
            n=int(data.get("n", 0)),
            k=int(data.get("k", 0)),
            session_k=int(data.get("session_k", 0)),
            session_n=int(data.get("session_n", 0)),
        )

    def flag_counts(self) -> tuple[int, int]:
        return self.k, self.n

    def units(self) -> tuple[int, int]:
        """(flagged, total) sessions; results for aggregates captured before sessions were kept."""
        return (self.session_k, self.session_n) if self.session_n else (self.k, self.n)

    def describe(self) -> str:
        return f"{self.k}/{self.n} = {self.k / self.n:.3%}" if self.n else f"{self.k}/{self.n}"


@dataclass
class Histogram(MetricStats):
    """Counts on fixed bins (``binning``), so aggregates captured months apart line up."""

    kind: ClassVar[str] = "continuous"
    counts: list[int] | None = None
    binning: dict[str, Any] | None = None

    def _fields(self) -> dict[str, Any]:
        return {"counts": self.counts, "binning": self.binning, "n": self.n}

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Histogram:
        return cls(
            fingerprints=set(data.get("fingerprints", [])),
            n=int(data.get("n", 0)),
            counts=data.get("counts"),
            binning=data.get("binning"),
        )

    def describe(self) -> str:
        return "histogram"


@dataclass
class Categories(MetricStats):
    """Counts per category (e.g. the first sampled token)."""

    kind: ClassVar[str] = "distribution"
    categories: dict[str, int] = field(default_factory=dict)

    def _fields(self) -> dict[str, Any]:
        return {"categories": self.categories, "n": self.n}

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Categories:
        return cls(
            fingerprints=set(data.get("fingerprints", [])),
            n=int(data.get("n", 0)),
            categories=dict(data.get("categories") or {}),
        )

    def describe(self) -> str:
        return f"{len(self.categories)} tokens"


class StatTest:
    """One metric kind: its statistics, the store aggregation that fills them, and its test."""

    kind: ClassVar[str]
    """The kind's name, as written in a policy's ``kind``."""
    stats: ClassVar[type[MetricStats]]
    aggregation: ClassVar[str]
    """The store aggregation whose rows `add` folds (`canary.store.aggregates.AGGREGATIONS`)."""
    directions: ClassVar[frozenset[str]] = frozenset({"higher_is_worse", "lower_is_worse"})
    """Directions a policy of this kind may have."""
    improves: ClassVar[bool] = True
    """Whether a change can be an improvement (a changed category mix never is)."""
    counts_flags: ClassVar[bool] = False
    """Whether the statistics are flag counts: shown as grid cells, tested pool against pool
    and monitored by the daemon's CUSUM alerts."""

    def empty(self, binning: Binning | None = None) -> MetricStats:
        """Statistics with nothing counted yet (``binning`` for binned kinds)."""
        return self.stats()

    def add(self, stats: MetricStats, row: Any) -> None:
        """Fold one row of `aggregation` into ``stats``."""
        raise NotImplementedError

    def test(
        self,
        before: MetricStats,
        after: MetricStats,
        policy: MetricPolicy,
        alpha: float,
        power: float,
    ) -> TestResult:
        """Before against after; raises `Incomparable` when they were summarised differently."""
        raise NotImplementedError


stat_tests: Registry[StatTest] = Registry("metric kind", "canary.stat_tests", base=StatTest)


def register_stat_test(cls: type[StatTest]) -> type[StatTest]:
    """Class decorator: register one instance of a `StatTest` under its ``kind``."""
    stat_tests.register(cls.kind)(cls())
    return cls


def stat_test(kind: str) -> StatTest:
    """The test of metric kind ``kind`` (a `ConfigError` with "did you mean" when unknown)."""
    return stat_tests.get(kind)


install_direction_lookup(lambda kind: frozenset(stat_test(kind).directions))


def _fold_counts(stats: MetricStats, row: Any) -> None:
    assert isinstance(stats, RateCounts)
    stats.n += int(row.n)
    stats.k += int(row.k)
    # Sessions are unique to one endpoint and round, so summing over cohorts is exact.
    stats.session_n += int(row.sessions)
    stats.session_k += int(row.flagged_sessions)
    if row.fingerprint:
        stats.fingerprints.add(row.fingerprint)


@register_stat_test
class RateTest(StatTest):
    """Flagged/total: one-sided Fisher exact test with a Newcombe interval."""

    kind = "rate"
    stats = RateCounts
    aggregation = "flags"
    counts_flags = True

    def add(self, stats: MetricStats, row: Any) -> None:
        _fold_counts(stats, row)

    def test(
        self,
        before: MetricStats,
        after: MetricStats,
        policy: MetricPolicy,
        alpha: float,
        power: float,
    ) -> TestResult:
        from canary.stats.rates import compare_rates

        assert isinstance(before, RateCounts) and isinstance(after, RateCounts)
        return compare_rates(before.k, before.n, after.k, after.n, policy, alpha, power)


@register_stat_test
class ContinuousTest(StatTest):
    """Histograms on fixed bins: Mann–Whitney U and a Hodges–Lehmann shift."""

    kind = "continuous"
    stats = Histogram
    aggregation = "bins"
    directions = frozenset({"higher_is_worse", "lower_is_worse", "two_sided"})

    def empty(self, binning: Binning | None = None) -> MetricStats:
        if binning is None:
            return Histogram()
        return Histogram(counts=[0] * binning.bins, binning=binning.model_dump())

    def add(self, stats: MetricStats, row: Any) -> None:
        assert isinstance(stats, Histogram) and stats.counts is not None
        stats.counts[int(row.index)] += int(row.n)
        stats.n += int(row.n)
        if row.fingerprint:
            stats.fingerprints.add(row.fingerprint)

    def test(
        self,
        before: MetricStats,
        after: MetricStats,
        policy: MetricPolicy,
        alpha: float,
        power: float,
    ) -> TestResult:
        from canary.stats.continuous import compare_continuous_binned

        assert isinstance(before, Histogram) and isinstance(after, Histogram)
        if before.binning != after.binning or before.counts is None or after.counts is None:
            raise Incomparable("histograms use different bins; re-capture the baseline")
        edges = Binning.model_validate(after.binning).edges()
        return compare_continuous_binned(edges, before.counts, after.counts, policy, alpha, power)


@register_stat_test
class DistributionTest(StatTest):
    """Category counts: chi-square test of the mix, effect Cohen's w; any change is worse."""

    kind = "distribution"
    stats = Categories
    aggregation = "categories"
    improves = False

    def add(self, stats: MetricStats, row: Any) -> None:
        assert isinstance(stats, Categories)
        category = str(row.category)
        stats.categories[category] = stats.categories.get(category, 0) + int(row.n)
        stats.n += int(row.n)
        if row.fingerprint:
            stats.fingerprints.add(row.fingerprint)

    def test(
        self,
        before: MetricStats,
        after: MetricStats,
        policy: MetricPolicy,
        alpha: float,
        power: float,
    ) -> TestResult:
        from canary.stats.distributions import compare_distributions

        assert isinstance(before, Categories) and isinstance(after, Categories)
        return compare_distributions(before.categories, after.categories, policy, alpha, power)


__all__ = [
    "Categories",
    "ContinuousTest",
    "DistributionTest",
    "Histogram",
    "Incomparable",
    "MetricStats",
    "RateCounts",
    "RateTest",
    "StatTest",
    "register_stat_test",
    "stat_test",
    "stat_tests",
]
