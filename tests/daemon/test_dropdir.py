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


def refuse_in_database(store: Store, change_id: str) -> None:
    """A real database that refuses one insert: a trigger, as a constraint added later would."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON changes "
                    f"WHEN NEW.change_id = '{change_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
                )
            )
            return
        conn.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.change_id = '{change_id}' THEN RAISE EXCEPTION 'refused by a trigger'; "
                "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON changes "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )


def test_poison_files_move_to_failed_and_never_block_the_good_ones(
    any_db_url: str, drop: Path
) -> None:
    from canary.store import open_store

    store = open_store(any_db_url)
    refuse_in_database(store, "db-refuses-this")
    poison = {
        "a-deep.json": "[" * 100_000 + "]" * 100_000,
        "b-deep.yaml": "[" * 20_000 + "]" * 20_000,
        "c-nested.json": json.dumps({**GOOD, "id": "n", "note": [[[[[[[[[["x"]]]]]]]]]]}),
        "d-not-utf8.json": b'{"id": "caf\xe9", "kind": "deploy"}',
        "e-refused.json": json.dumps({"id": "db-refuses-this", "kind": "lb"}),
        "f-aliases.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "id: bomb\nkind: lb\n",
    }
    for name, content in poison.items():
        path = drop / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    # Good files sort after the poison; hostile but storable text is stored, replaced.
    write(drop, "x-good.json", GOOD)
    (drop / "y-surrogate.json").write_text(
        '{"id": "deploy-\\ud800", "kind": "deploy", "note": "nul \\u0000 here"}', encoding="utf-8"
    )
    try:
        outcomes = {o.name: o for o in ingest_change_files(store, drop)}
        assert {n for n, o in outcomes.items() if o.status == "failed"} == set(poison)
        assert {n for n, o in outcomes.items() if o.status == "processed"} == {
            "x-good.json",
            "y-surrogate.json",
        }
        for name in poison:
            assert (drop / "failed" / name).is_file()
            reason = (drop / "failed" / f"{name}.error").read_text(encoding="utf-8")
            assert reason.startswith(f"{name}: ") and reason.count("\n") == 1, reason
            assert "Traceback" not in reason and len(reason) <= 501
        assert "refused it" in (outcomes["e-refused.json"].error or "")
        stored = {c.change_id: c for c in list_changes(store)}
        assert set(stored) == {"deploy-1", "deploy-\ufffd"}
        assert stored["deploy-\ufffd"].note == "nul \ufffd here"
        assert pending_names(drop) == []
        assert ingest_change_files(store, drop) == [], "nothing is left to fail again"
    finally:
        store.close()


def pending_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def test_an_unreachable_database_leaves_the_file_for_the_next_poll(
    tmp_path: Path, drop: Path
) -> None:
    import shutil

    from sqlalchemy.exc import SQLAlchemyError

    from canary.store import open_store

    folder = tmp_path / "db"
    folder.mkdir()
    store = open_store(f"sqlite:///{folder / 'canary.db'}")
    write(drop, "deploy.json", GOOD)
    store.engine.dispose()
    shutil.rmtree(folder)
    with pytest.raises(SQLAlchemyError):
        ingest_change_files(store, drop)
    assert pending_names(drop) == ["deploy.json"]
    assert not (drop / "failed").exists()
