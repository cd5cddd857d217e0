"""One decision on a database's schema, shared by `open_store` (errors) and `canary doctor`."""

from __future__ import annotations

import pytest

from canary.store import head_revision
from canary.store.migrate import known_revisions, schema_status


def test_each_schema_state_is_decided_from_tables_and_revision() -> None:
    head = head_revision()
    older = sorted(known_revisions() - {head})
    assert schema_status([], None).state == "empty"
    assert schema_status(["some_other_app_table"], None).state == "empty"
    assert schema_status(["results", "runs"], None).state == "foreign"
    assert schema_status(["alembic_version", "results"], head).state == "at_head"
    assert schema_status(["alembic_version"], None).state == "behind"  # migrated down to base
    if older:
        assert schema_status(["alembic_version", "results"], older[0]).state == "behind"
    newer = schema_status(["alembic_version", "results"], "f00dfeed1234")
    assert (newer.state, newer.revision, newer.head) == ("ahead", "f00dfeed1234", head)


@pytest.mark.parametrize("revision", [None, "f00dfeed1234"])
def test_the_status_names_the_head_it_was_judged_against(revision: str | None) -> None:
    assert schema_status(["alembic_version"], revision).head == head_revision()
