"""Every detector over real broken outputs quoted from serving-engine bug reports, and clean
ones: at least 90% of the broken rows flagged, none of the clean (tests/data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import regex

from canary.detectors.triage import DetectRow, detect_rows, parse_rows

CORPUS = Path(__file__).parents[1] / "data" / "broken_outputs.jsonl"
SOURCE = regex.compile(r"^[\w.-]+/[\w.-]+#\d+$")


@pytest.fixture(scope="module")
def rows() -> list[tuple[int, DetectRow]]:
    return parse_rows(CORPUS.read_text(encoding="utf-8").splitlines(), str(CORPUS))


def label(row: DetectRow) -> bool:
    broken = (row.model_extra or {}).get("broken")
    assert isinstance(broken, bool), row
    return broken


def test_every_broken_row_cites_its_bug_report(rows: list[tuple[int, DetectRow]]) -> None:
    broken = [row for _, row in rows if label(row)]
    assert len(broken) >= 30
    for row in broken:
        assert SOURCE.match(str((row.model_extra or {}).get("source"))), row.id
    assert len({row.id for _, row in rows}) == len(rows)


def test_detectors_flag_the_broken_rows_and_none_of_the_clean(
    rows: list[tuple[int, DetectRow]],
) -> None:
    verdicts = detect_rows(rows, source=str(CORPUS))
    broken = [v for (_, row), v in zip(rows, verdicts, strict=True) if label(row)]
    clean = [v for (_, row), v in zip(rows, verdicts, strict=True) if not label(row)]
    caught = sum(v.flagged for v in broken)
    false_flags = [v.id for v in clean if v.flagged]
    missed = [v.id for v in broken if not v.flagged]
    print(f"\nbroken flagged: {caught}/{len(broken)} ({caught / len(broken):.0%}); missed {missed}")
    print(f"clean flagged: {len(false_flags)}/{len(clean)} {false_flags}")
    assert caught / len(broken) >= 0.9
    assert false_flags == []


def test_each_flag_points_at_the_offending_text(rows: list[tuple[int, DetectRow]]) -> None:
    for (_, row), verdict in zip(rows, detect_rows(rows), strict=True):
        for reason in verdict.reasons:
            if reason.span is None:
                continue
            start, end = reason.span["start"], reason.span["end"]
            assert 0 <= start < end <= len(row.text)
            assert row.text[start:end].startswith(reason.span["text"][:10]), (row.id, reason)


def test_corpus_rows_are_json_lines_in_detect_format() -> None:
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        assert set(data) <= {"id", "text", "prompt", "kind", "expect", "finish_reason",
                             "broken", "source", "note"}  # fmt: skip
