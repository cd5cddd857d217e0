"""The change drop directory: a CD system writes a file, the daemon records the changes in it.

A file is `*.json`, `*.yaml` or `*.yml` holding one change or a list of changes (the keys of
`change_from_mapping`). Writers should write `NAME.tmp` (or `.NAME`) and rename it when done;
those names are never read. Each file is all or nothing: its changes are stored in one
transaction, then it moves to `processed/`; a file that cannot be stored, for any reason (bad
input, nesting, a value the database refuses, a bug), moves to `failed/` beside `NAME.error`,
the one-line reason, and the next file is read: one poison file never blocks the rest. Only a
database that cannot be reached at all raises and leaves the file where it is, for the next
poll.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from canary.errors import ConfigError
from canary.sanitize import one_line
from canary.store.changes import RecordedChange, changes_from_data, record_changes

if TYPE_CHECKING:
    from canary.daemon.metrics import DaemonMetrics
    from canary.store.repository import Store

logger = logging.getLogger(__name__)

SUFFIXES = (".json", ".yaml", ".yml")
PROCESSED = "processed"
FAILED = "failed"
#: A change file is a few hundred bytes; anything this large is a mistake, not a change.
MAX_FILE_BYTES = 1 << 20
#: Longest reason written beside a failed file.
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one drop file."""

    name: str
    """The file's name in the drop directory."""
    status: Literal["processed", "failed"]
    moved_to: Path
    changes: list[RecordedChange] = field(default_factory=list)
    """The stored changes (an identical earlier recording counts, with `created=False`)."""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "status": self.status,
            "moved_to": str(self.moved_to),
            "changes": [{**r.change.to_dict(), "created": r.created} for r in self.changes],
            "error": self.error,
        }


def pending_files(directory: Path) -> list[Path]:
    """The drop files waiting in `directory`, by name."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def ingest_change_files(
    store: Store, directory: Path, *, metrics: DaemonMetrics | None = None
) -> list[IngestOutcome]:
    """Record the changes of every drop file in `directory` and move each file on."""
    if not directory.is_dir():
        raise ConfigError(
            f"change drop directory {directory} does not exist; create it or fix the path"
        )
    outcomes = []
    for path in pending_files(directory):
        try:
            outcome = _ingest(store, directory, path)
        except FileNotFoundError:
            continue  # another daemon polling the same directory took it first
        except OSError as exc:  # it cannot even be moved: say so, and go on with the next
            logger.error("change file %s cannot be moved on: %s", path.name, one_line(exc))
            continue
        if metrics is not None:
            for recorded in outcome.changes:
                if recorded.created:
                    metrics.change_recorded("dropdir")
        outcomes.append(outcome)
    return outcomes


def _ingest(store: Store, directory: Path, path: Path) -> IngestOutcome:
    from canary.store.health import DatabaseError, reachable

    try:
        specs = changes_from_data(_load(path), source=path.name)
        recorded = record_changes(store, specs)
    except FileNotFoundError:
        raise
    except ConfigError as exc:
        return _fail(directory, path, str(exc))
    except DatabaseError as exc:
        if not reachable(store):
            raise  # the database is down, not the file: keep it for the next poll
        return _fail(directory, path, f"{path.name}: the database refused it: {_first_line(exc)}")
    except RecursionError:
        return _fail(directory, path, f"{path.name}: nested too deeply; a change is a flat object")
    except Exception as exc:  # a poison file must never block the files after it
        return _fail(directory, path, f"{path.name}: {type(exc).__name__}: {_first_line(exc)}")
    target = _free_name(directory / PROCESSED, path.name)
    # Stored first, moved second: a crash in between re-reads the file next poll, and an
    # identical change already stored counts as recorded.
    os.replace(path, target)
    return IngestOutcome(path.name, "processed", target, recorded)


def _fail(directory: Path, path: Path, reason: str) -> IngestOutcome:
    reason = one_line(reason)[:MAX_REASON_CHARS]
    target = _free_name(directory / FAILED, path.name)
    # The reason is written before the file moves: a crash in between re-fails the file.
    _write_atomic(target.with_name(target.name + ".error"), reason + "\n")
    os.replace(path, target)
    return IngestOutcome(path.name, "failed", target, error=reason)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _load(path: Path) -> Any:
    import yaml

    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path.name}: larger than {MAX_FILE_BYTES} bytes; split it up")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text; save it as UTF-8") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError(f"{path.name}: invalid YAML{where}: {problem}") from None


def _free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem.N.suffix` when a file of that name was moved there before."""
    folder.mkdir(exist_ok=True)
    target = folder / name
    n = 1
    while target.exists() or target.with_name(target.name + ".error").exists():
        stem, dot, suffix = name.rpartition(".")
        target = folder / f"{stem}.{n}{dot}{suffix}"
        n += 1
    return target


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
