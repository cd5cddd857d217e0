"""`change_from_mapping` and `record_changes`: the input every change path shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from canary.errors import ConfigError
from canary.store import Store
from canary.store.changes import (
    ChangeConflictError,
    change_from_mapping,
    changes_from_data,
    list_changes,
    record_change,
    record_changes,
)

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "select",
    ["pool=a,region=b", {"pool": "a", "region": "b"}, ["pool=a", "region=b"], ["pool=a,region=b"]],
)
def test_every_select_form_gives_the_same_labels(select: object) -> None:
    spec = change_from_mapping({"id": "d1", "kind": "deploy", "select": select}, source="t")
    assert spec.labels == {"pool": "a", "region": "b"}


def test_at_absolute_relative_and_absent() -> None:
    def at(value: object) -> tuple[datetime, bool]:
        data = {"id": "d1", "kind": "lb"} | ({} if value is None else {"at": value})
        spec = change_from_mapping(data, source="t", now=NOW)
        return spec.at, spec.exact_at

    assert at(None) == (NOW, False)
    assert at("15m") == (NOW - timedelta(minutes=15), False)
    assert at("2026-11-23T08:00:00Z") == (NOW - timedelta(days=1), True)
    assert at(datetime(2026, 11, 23, 8, 0)) == (NOW - timedelta(days=1), True)  # YAML, naive


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"id": "d1", "kind": "deploy", "pool": "a"}, "unknown key 'pool'"),
        ({"id": "d1", "kind": "rollout"}, "kind 'rollout' is unknown; use one of deploy"),
        ({"kind": "deploy"}, 'needs an "id"'),
        ({"id": "d1", "kind": "deploy", "select": "pool"}, "\"select\" 'pool' is not"),
        ({"id": "d1", "kind": "deploy", "select": {"shard": 3}}, "quote the value"),
        ({"id": "d1", "kind": "deploy", "at": "yesterday"}, "\"at\" 'yesterday' is neither"),
        ({"id": "d1", "kind": "deploy", "note": 4}, '"note" is a number'),
        (["not", "a change"], "src.yaml[0]: a change is an object"),
        ([], "the list of changes is empty"),
    ],
)
def test_bad_changes_are_one_line_errors_naming_the_source(data: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        changes_from_data(data, source="src.yaml")
    message = str(caught.value)
    assert message.startswith("src.yaml")
    assert expected in message
    assert "\n" not in message


def test_identical_retry_is_not_an_error_and_a_conflict_stores_nothing(store: Store) -> None:
    first = change_from_mapping(
        {"id": "d1", "kind": "deploy", "select": "pool=a", "at": "2026-11-24T08:00:00Z"},
        source="t",
    )
    (recorded,) = record_changes(store, [first])
    assert recorded.created
    (again,) = record_changes(store, [first])
    assert not again.created and again.change == recorded.change

    new = change_from_mapping({"id": "d2", "kind": "config"}, source="t")
    clash = change_from_mapping(
        {"id": "d1", "kind": "deploy", "select": "pool=b", "at": "2026-11-24T08:00:00Z"},
        source="t",
    )
    with pytest.raises(ChangeConflictError, match="another cohorts"):
        record_changes(store, [new, clash])
    assert [c.change_id for c in list_changes(store)] == ["d1"]


def test_a_retry_without_a_time_matches_on_everything_else(store: Store) -> None:
    data = {"id": "d1", "kind": "deploy", "note": "x"}
    record_changes(store, [change_from_mapping(data, source="t", now=NOW)])
    later = change_from_mapping(data, source="t", now=NOW + timedelta(minutes=2))
    (again,) = record_changes(store, [later])
    assert not again.created and again.change.at == NOW


def test_record_change_still_refuses_a_second_recording(store: Store) -> None:
    record_change(store, "d1", "deploy", {"pool": "a"}, NOW)
    with pytest.raises(ConfigError, match="already recorded"):
        record_change(store, "d1", "deploy", {"pool": "a"}, NOW)
