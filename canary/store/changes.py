"""Recorded changes: what was deployed or reconfigured, where, and when.

Changes arrive from the CLI, the daemon's `POST /changes` and its drop directory; all three
parse with `change_from_mapping` and store with `record_changes`, so they accept the same
input and answer a retried change the same way. Ids, notes and labels pass `storable_text` on
the way in, so a lone surrogate or a NUL can never fail the insert on either database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from canary.config.selection import parse_label_filters
from canary.errors import ConfigError, NotFoundError
from canary.sanitize import storable_text
from canary.store.models import ChangeRow
from canary.store.repository import Store
from canary.timespec import parse_duration, parse_time

CHANGE_KINDS = ("deploy", "config", "lb", "model")
#: The keys of a change given as a mapping (a JSON body, a drop file).
CHANGE_KEYS = ("id", "kind", "select", "at", "note")
_ID_MAX = 128  # ChangeRow.change_id
#: A change is a flat object; deeper input (or more values) is a mistake or an attack.
MAX_DEPTH = 8
MAX_VALUES = 100_000
_SELECT_EXAMPLE = '"pool=tpu-a,region=eu", {"pool": "tpu-a"} or ["pool=tpu-a"]'


@dataclass(frozen=True)
class Change:
    change_id: str
    kind: str
    labels: dict[str, str]
    at: datetime
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.change_id,
            "kind": self.kind,
            "labels": self.labels,
            "at": self.at.isoformat(),
            "note": self.note,
        }


@dataclass(frozen=True)
class ChangeSpec:
    """A change as submitted, validated but not yet stored."""

    change_id: str
    kind: str
    labels: dict[str, str]
    at: datetime
    note: str = ""
    exact_at: bool = True
    """False when `at` was absent (now) or relative (`15m`): a retry of the same id computes
    another time, so it matches the stored change on everything but `at`."""


@dataclass(frozen=True)
class RecordedChange:
    """The stored change, and whether this call stored it or found an identical one."""

    change: Change
    created: bool


class ChangeConflictError(ConfigError):
    """A change id is already recorded with a different kind, cohorts, time or note."""


def change_from_mapping(
    data: Mapping[str, Any], *, source: str, now: datetime | None = None
) -> ChangeSpec:
    """Validate one change: ``{"id", "kind", "select", "at", "note"}``; errors name `source`.

    `select` is ``"pool=a,region=b"``, ``{"pool": "a"}`` or ``["pool=a"]`` (absent: the whole
    fleet); `at` is an ISO time, a duration ago (``15m``) or absent (now).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: a change is an object with keys {', '.join(CHANGE_KEYS)}, "
            f"not {_type_name(data)}"
        )
    unknown = sorted(str(k) for k in data if k not in CHANGE_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {', '.join(repr(k) for k in unknown)} in a change; "
            f"allowed keys: {', '.join(CHANGE_KEYS)}"
        )
    change_id = data.get("id")
    if not isinstance(change_id, str) or not change_id.strip():
        raise ConfigError(f'{source}: a change needs an "id" string, e.g. "deploy-2026-11-24-1"')
    if len(change_id) > _ID_MAX:
        raise ConfigError(
            f"{source}: change id is {len(change_id)} characters; use {_ID_MAX} at most"
        )
    kind = data.get("kind")
    if kind not in CHANGE_KINDS:
        raise ConfigError(
            f"{source}: change kind {kind!r} is unknown; use one of {', '.join(CHANGE_KINDS)}"
        )
    note = data.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise ConfigError(f'{source}: "note" is {_type_name(note)}; write it as a string')
    at, exact_at = _parse_at(data.get("at"), source, now)
    labels = _parse_select(data.get("select"), source)
    return ChangeSpec(change_id.strip(), str(kind), labels, at, note, exact_at)


def changes_from_data(data: Any, *, source: str, now: datetime | None = None) -> list[ChangeSpec]:
    """One change (a mapping) or a non-empty list of them; list items are named `source[i]`."""
    _check_shape(data, source)
    if isinstance(data, list):
        if not data:
            raise ConfigError(f"{source}: the list of changes is empty; give at least one change")
        return [
            change_from_mapping(item, source=f"{source}[{i}]", now=now)
            for i, item in enumerate(data)
        ]
    return [change_from_mapping(data, source=source, now=now)]


def _check_shape(data: Any, source: str) -> None:
    """Refuse input nested deeper than `MAX_DEPTH` or holding more than `MAX_VALUES` values,
    walked without recursion (YAML aliases can make a small file a huge, deep graph)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ConfigError(f"{source}: more than {MAX_VALUES} values; send fewer changes")
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{source}: nested more than {MAX_DEPTH} levels deep; a change is a flat object"
            )
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _storable(spec: ChangeSpec) -> ChangeSpec:
    """`spec` with id, note and labels as both databases store them unchanged."""
    labels = {str(storable_text(k)): str(storable_text(v)) for k, v in spec.labels.items()}
    return ChangeSpec(
        str(storable_text(spec.change_id)),
        spec.kind,
        labels,
        spec.at,
        str(storable_text(spec.note)),
        spec.exact_at,
    )


def _parse_at(value: Any, source: str, now: datetime | None) -> tuple[datetime, bool]:
    now = now or datetime.now(UTC)
    if value is None:
        return now, False
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp as a datetime
        return (value if value.tzinfo else value.replace(tzinfo=UTC)), True
    if not isinstance(value, str):
        raise ConfigError(
            f'{source}: "at" is {_type_name(value)}; write an ISO time '
            '("2026-11-24T08:00:00Z") or a duration ago ("15m")'
        )
    try:
        at = parse_time(value, now=now)
    except ConfigError as exc:
        raise ConfigError(f'{source}: "at" {exc}') from None
    try:
        parse_duration(value)
    except ConfigError:
        return at, True
    return at, False


def _parse_select(value: Any, source: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        pairs = [p for p in (part.strip() for part in value.split(",")) if p]
    elif isinstance(value, Mapping):
        bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise ConfigError(
                f'{source}: "select" label {bad[0]!r} must map to a string; quote the value, '
                f'e.g. {{"shard": "3"}}'
            )
        pairs = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        pairs = [p for item in value for p in (part.strip() for part in item.split(",")) if p]
    else:
        raise ConfigError(f'{source}: "select" is {_type_name(value)}; write {_SELECT_EXAMPLE}')
    try:
        return parse_label_filters(pairs)
    except ConfigError:
        raise ConfigError(
            f'{source}: "select" {value!r} is not distinct label=value pairs; '
            f"write {_SELECT_EXAMPLE}"
        ) from None


def _type_name(value: Any) -> str:
    names = {list: "a list", dict: "an object", str: "a string", bool: "a boolean"}
    names |= {int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


def record_changes(store: Store, specs: Sequence[ChangeSpec]) -> list[RecordedChange]:
    """Store `specs` in one transaction, all or none.

    An id that is already stored with the same content is a retry (`created=False`); with any
    other content it is a `ChangeConflictError` and nothing of `specs` is stored.
    """
    specs = [_storable(spec) for spec in specs]
    for attempt in (1, 2):
        try:
            with store.write_transaction() as conn:
                return [_record_one(conn, spec) for spec in specs]
        except IntegrityError:
            # Another writer stored one of these ids between our SELECT and INSERT (PostgreSQL);
            # the second pass sees its row and answers retry or conflict.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record_one(conn: Connection, spec: ChangeSpec) -> RecordedChange:
    stored = find_change(conn, spec.change_id)
    if stored is not None:
        differs = [
            name
            for name, same in (
                ("kind", stored.kind == spec.kind),
                ("cohorts", stored.labels == spec.labels),
                ("time", stored.at == spec.at or not spec.exact_at),
                ("note", stored.note == spec.note),
            )
            if not same
        ]
        if differs:
            raise ChangeConflictError(
                f"change {spec.change_id!r} is already recorded with another "
                f"{' and '.join(differs)}; give this change a new id (see `canary change list`)"
            )
        return RecordedChange(stored, created=False)
    conn.execute(
        insert(ChangeRow).values(
            change_id=spec.change_id,
            kind=spec.kind,
            labels=dict(spec.labels),
            at=spec.at,
            note=spec.note,
            recorded_at=datetime.now(UTC),
        )
    )
    change = Change(spec.change_id, spec.kind, dict(spec.labels), spec.at, spec.note)
    return RecordedChange(change, created=True)


def record_change(
    store: Store,
    change_id: str,
    kind: str,
    labels: Mapping[str, str],
    at: datetime,
    note: str = "",
) -> Change:
    """Store one change whose id is new; recording an id a second time is an error here."""
    if kind not in CHANGE_KINDS:
        raise ConfigError(f"change kind {kind!r} is unknown; use one of {', '.join(CHANGE_KINDS)}")
    if not change_id.strip():
        raise ConfigError("a change needs an id, e.g. --id deploy-2026-11-24-1")
    (recorded,) = record_changes(store, [ChangeSpec(change_id, kind, dict(labels), at, note)])
    if not recorded.created:
        raise ConfigError(f"change {change_id!r} is already recorded; see `canary change list`")
    return recorded.change


def get_change(store: Store, change_id: str) -> Change:
    with store.engine.connect() as conn:
        change = find_change(conn, change_id)
    if change is None:
        raise NotFoundError(f"no change {change_id!r}; record it with `canary change record`")
    return change


def find_change(conn: Connection, change_id: str) -> Change | None:
    """The recorded change ``change_id`` read on ``conn`` (inside a caller's transaction)."""
    stored_id = storable_text(change_id)  # an id typed with a NUL is looked up as stored
    row = conn.execute(_COLUMNS.where(ChangeRow.change_id == stored_id)).first()
    return None if row is None else _change(row)


def list_changes(
    store: Store, since: datetime | None = None, until: datetime | None = None
) -> list[Change]:
    """Changes in [since, until), oldest first."""
    query = _COLUMNS.order_by(ChangeRow.at)
    if since is not None:
        query = query.where(ChangeRow.at >= since)
    if until is not None:
        query = query.where(ChangeRow.at < until)
    with store.engine.connect() as conn:
        return [_change(r) for r in conn.execute(query)]


_COLUMNS = select(
    ChangeRow.change_id, ChangeRow.kind, ChangeRow.labels, ChangeRow.at, ChangeRow.note
)


def _change(row: Any) -> Change:
    return Change(row.change_id, row.kind, dict(row.labels), row.at, row.note)
