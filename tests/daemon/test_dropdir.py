"""The change drop directory: files in, changes stored whole, files moved on (never lost)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli.main import app
from canary.daemon.dropdir import ingest_change_files
from canary.daemon.metrics import DaemonMetrics
from canary.errors import ExitCode
from canary.store import Store
from canary.store.changes import list_changes

GOOD = {"id": "deploy-1", "kind": "deploy", "select": "pool=a", "at": "2026-11-24T08:00:00Z"}


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


def write(directory: Path, name: str, data: object) -> Path:
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_good_file_is_recorded_and_moved_to_processed(store: Store, drop: Path) -> None:
    (drop / "deploy.yaml").write_text(
        "- id: deploy-1\n  kind: deploy\n  select: {pool: a}\n  at: 2026-11-24T08:00:00Z\n"
        "- {id: lb-1, kind: lb, at: 10m, note: drain b}\n",
        encoding="utf-8",
    )
    metrics = DaemonMetrics()
    (outcome,) = ingest_change_files(store, drop, metrics=metrics)
    assert outcome.status == "processed" and outcome.error is None
    assert outcome.moved_to == drop / "processed" / "deploy.yaml"
    assert outcome.moved_to.is_file() and not (drop / "deploy.yaml").exists()
    stored = {c.change_id: c for c in list_changes(store)}
    assert stored["deploy-1"].labels == {"pool": "a"}
    assert stored["lb-1"].note == "drain b"
    assert (
        metrics.registry.get_sample_value("canary_changes_recorded_total", {"source": "dropdir"})
        == 2
    )
    assert ingest_change_files(store, drop) == []


def test_a_bad_file_moves_to_failed_with_its_reason(store: Store, drop: Path) -> None:
    write(drop, "bad.json", {"id": "x", "kind": "rollout"})
    (drop / "broken.json").write_text("{not json", encoding="utf-8")
    outcomes = {o.name: o for o in ingest_change_files(store, drop)}
    assert {o.status for o in outcomes.values()} == {"failed"}
    reason = (drop / "failed" / "bad.json.error").read_text(encoding="utf-8")
    assert reason.startswith("bad.json: change kind 'rollout' is unknown")
    assert reason.count("\n") == 1
    assert "invalid JSON at line 1" in (drop / "failed" / "broken.json.error").read_text()
    assert (drop / "failed" / "bad.json").is_file()
    assert list_changes(store) == []


def test_one_bad_item_records_none_of_the_file(store: Store, drop: Path) -> None:
    write(drop, "two.json", [GOOD, {"id": "c-2", "kind": "config", "select": "pool"}])
    (outcome,) = ingest_change_files(store, drop)
    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error.startswith("two.json[1]:")
    assert list_changes(store) == []


def test_a_conflict_with_a_stored_change_fails_the_whole_file(store: Store, drop: Path) -> None:
    write(drop, "a.json", GOOD)
    ingest_change_files(store, drop)
    write(drop, "b.json", [{"id": "new-1", "kind": "lb"}, GOOD | {"note": "other"}])
    (outcome,) = ingest_change_files(store, drop)
    assert outcome.status == "failed" and "another note" in (outcome.error or "")
    assert [c.change_id for c in list_changes(store)] == ["deploy-1"]


def test_a_retried_file_counts_as_processed_and_keeps_both_copies(store: Store, drop: Path) -> None:
    write(drop, "deploy.json", GOOD)
    ingest_change_files(store, drop)
    write(drop, "deploy.json", GOOD)
    (outcome,) = ingest_change_files(store, drop)
    assert outcome.status == "processed" and not outcome.changes[0].created
    assert outcome.moved_to == drop / "processed" / "deploy.1.json"
    assert (drop / "processed" / "deploy.json").is_file()


def test_files_being_written_and_other_names_are_left_alone(store: Store, drop: Path) -> None:
    for name in ("deploy.json.tmp", ".deploy.json", "notes.txt"):
        write(drop, name, GOOD)
    assert ingest_change_files(store, drop) == []
    assert sorted(p.name for p in drop.iterdir()) == [
        ".deploy.json",
        "deploy.json.tmp",
        "notes.txt",
    ]


def test_cli_ingest_reports_and_exits_3_on_a_failed_file(drop: Path) -> None:
    write(drop, "a.json", GOOD)
    write(drop, "b.json", {"id": "b", "kind": "nope"})
    result = CliRunner().invoke(app, ["change", "ingest", str(drop), "--json"])
    assert result.exit_code == ExitCode.USAGE, result.output
    rows = {row["file"]: row for row in json.loads(result.stdout)}
    assert rows["a.json"]["status"] == "processed"
    assert rows["a.json"]["changes"][0]["id"] == "deploy-1"
    assert rows["b.json"]["status"] == "failed"
