"""Stored results → detectors → score rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from canary.cli.main import app
from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.scoring import score_stored
from canary.store import Store, open_store
from canary.store.models import DetectorSpecRow, ScoreRow

T0 = datetime(2026, 11, 1, tzinfo=UTC)

SUITE = Suite(
    name="mixed",
    probes=[
        Probe(id="prose", kind="script", prompt="Describe the function."),
        Probe(
            id="code", kind="code", prompt="Write a Python function.", expect={"language": "python"}
        ),
        Probe(id="answer", kind="fixed", prompt="2+2=", expect={"exact": "4"}),
        Probe(id="again", kind="determinism", prompt="Count", repeat=4),
    ],
)
ENDPOINT = EndpointConfig(
    name="pool-a", base_url="http://a.test/v1", model="m", labels={"pool": "a"}
)

OUTPUTS = [
    ("prose", 0, "It returns the number of items."),
    ("prose", 1, "It returns the สวัสดี number of items."),
    ("code", 0, "```python\ndef f(x):\n    return x + 1\n```"),
    ("code", 1, "```python\ndef f(x:\n    return x + 1\n```"),
    ("answer", 0, "4"),
    ("answer", 1, "5"),
    ("again", 0, "one two three"),
    ("again", 1, "one two three"),
    ("again", 2, "one two three"),
    ("again", 3, "one two four"),
]


def record(probe: str, index: int, text: str | None, error: str | None = None) -> ResultRecord:
    return ResultRecord(
        endpoint="pool-a",
        probe_id=probe,
        repeat_index=index,
        session_id=f"{probe}-{index}",
        labels={**ENDPOINT.cohort_labels(), "load": "probe"},
        request={"prompt": probe},
        started_at=T0 + timedelta(seconds=index),
        latency_ms=10.0,
        attempts=1,
        status_code=200 if error is None else 503,
        error_kind=error,
        output_text=text,
        finish_reason="stop" if error is None else None,
    )


def stored_run(url: str) -> tuple[Store, int]:
    store = open_store(url)
    suite_id = store.register_suite(SUITE)
    store.register_endpoints([ENDPOINT])
    run_id = store.start_run(suite_id)
    records = [record(p, i, t) for p, i, t in OUTPUTS] + [record("prose", 2, None, "http_5xx")]
    store.save_results(run_id, suite_id, records)
    store.finish_run(run_id)
    return store, run_id


def flagged_by_probe(store: Store, metric: str) -> dict[tuple[str, int], bool]:
    results = store.results_for_run(1)
    out = {}
    for r in results:
        for s in r.scores:
            if s.metric == metric:
                out[(r.probe_id, r.repeat_index)] = s.flagged
    return out


def test_scoring_flags_exactly_the_bad_outputs(any_db_url: str) -> None:
    store, run_id = stored_run(any_db_url)
    report = score_stored(store, ResultFilter(run_ids=(run_id,)))
    assert report.results == 11

    script = flagged_by_probe(store, "unexpected_script")
    assert script[("prose", 1)] and not script[("prose", 0)]
    assert ("prose", 2) not in script  # a failed request has no text to judge
    assert flagged_by_probe(store, "code_parse_error") == {("code", 0): False, ("code", 1): True}
    assert flagged_by_probe(store, "fixed_fail") == {("answer", 0): False, ("answer", 1): True}
    mismatch = flagged_by_probe(store, "majority_mismatch")
    assert [mismatch[("again", i)] for i in range(4)] == [False, False, False, True]

    thai = store.results_for_run(run_id)
    evidence = next(
        s.evidence
        for r in thai
        if r.probe_id == "prose" and r.repeat_index == 1
        for s in r.scores
        if s.metric == "unexpected_script"
    )
    assert evidence is not None and "สวัสดี" in json.dumps(evidence, ensure_ascii=False)
    assert report.flagged["unexpected_script"] == 1
    assert report.flagged["code_parse_error"] == 1


def test_rescoring_replaces_and_records_detector_specs(any_db_url: str) -> None:
    store, run_id = stored_run(any_db_url)
    first = score_stored(store, ResultFilter(run_ids=(run_id,)))
    second = score_stored(store, ResultFilter(run_ids=(run_id,)))
    assert first.scores == second.scores
    with store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(ScoreRow)).scalar_one()
        versions = set(conn.execute(select(ScoreRow.detector, ScoreRow.detector_version)).all())
        specs = {
            (d, f): a
            for d, f, a in conn.execute(
                select(DetectorSpecRow.detector, DetectorSpecRow.fingerprint, DetectorSpecRow.args)
            )
        }
    assert rows == first.scores
    for detector, fingerprint in versions:
        assert (detector, fingerprint) in specs, "every score's fingerprint has its arguments"


def test_only_selected_detectors_and_windows(sqlite_url: str) -> None:
    store, _ = stored_run(sqlite_url)
    report = score_stored(
        store, ResultFilter(since=T0, until=T0 + timedelta(seconds=1)), detectors=["fixed"]
    )
    assert set(report.scored) - {"distinct_outputs", "majority_mismatch"} == {"fixed_fail"}
    assert report.scored["fixed_fail"] == 1  # only repeat 0 started inside the window


def test_score_command(sqlite_url: str) -> None:
    stored_run(sqlite_url)
    result = CliRunner().invoke(app, ["score", "--since", "3650d", "--db", sqlite_url, "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    assert metrics["code_parse_error"] == {"scored": 2, "flagged": 1}
    bad = CliRunner().invoke(app, ["score", "--detector", "scirpt", "--db", sqlite_url])
    assert bad.exit_code == 3 and "did you mean 'script'" in bad.output
    bad = CliRunner().invoke(app, ["score", "--since", "yesterday", "--db", sqlite_url])
    assert bad.exit_code == 3 and "neither a duration" in bad.output
