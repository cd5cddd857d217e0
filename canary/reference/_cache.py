"""Reference outputs cached in the store's `reference_outputs` table, so rounds never recompute."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from canary.reference._model import ReferenceOutput, TokenLogprob

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)


def canonical_params(params: Mapping[str, Any]) -> str:
    """The params as canonical JSON (sorted keys, no spaces): the same dict gives the same text."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(prompt: str, params: Mapping[str, Any]) -> str:
    """SHA-256 of the prompt and the canonical params JSON, separated by a NUL byte."""
    return hashlib.sha256(
        prompt.encode("utf-8") + b"\0" + canonical_params(params).encode("utf-8")
    ).hexdigest()


class ReferenceCache:
    """Reads and writes `ReferenceOutputRow`s keyed by (model fingerprint, cache key)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_many(self, fingerprint: str, keys: Iterable[str]) -> dict[str, ReferenceOutput]:
        """The cached outputs among `keys`, by key; missing keys are simply absent."""
        from sqlalchemy import delete, select
        from sqlalchemy.orm import Session

        from canary.store.models import ReferenceOutputRow

        wanted = sorted(set(keys))
        found: dict[str, ReferenceOutput] = {}
        unreadable: list[int] = []
        with Session(self.engine) as session:
            # Chunked so the IN list stays under SQLite's parameter limit.
            for start in range(0, len(wanted), 500):
                rows = session.scalars(
                    select(ReferenceOutputRow).where(
                        ReferenceOutputRow.model_fingerprint == fingerprint,
                        ReferenceOutputRow.cache_key.in_(wanted[start : start + 500]),
                    )
                )
                for row in rows:
                    try:
                        found[row.cache_key] = _from_row(row)
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        logger.warning(
                            "reference cache row %s is unreadable (%s: %s); recomputing it",
                            row.id,
                            type(exc).__name__,
                            exc,
                        )
                        unreadable.append(row.id)
            if unreadable:
                # Dropped, so the recomputed output is cached in its place: a bad row must not
                # cost a recomputation in every later pass, nor fail one.
                session.execute(
                    delete(ReferenceOutputRow).where(ReferenceOutputRow.id.in_(unreadable))
                )
                session.commit()
        return found

    def put_many(
        self,
        fingerprint: str,
        entries: Iterable[tuple[Mapping[str, Any], ReferenceOutput]],
    ) -> int:
        """Store `(params, output)` pairs; returns how many were new (others were already there)."""
        from sqlalchemy.exc import IntegrityError
        from sqlalchemy.orm import Session

        from canary.store.models import ReferenceOutputRow

        added = 0
        with Session(self.engine) as session:
            for params, output in entries:
                row = ReferenceOutputRow(
                    model_fingerprint=fingerprint,
                    cache_key=cache_key(output.prompt, params),
                    prompt=output.prompt,
                    params=dict(params),
                    output_text=output.text,
                    tokens=[t.to_json() for t in output.tokens],
                )
                try:
                    # A concurrent runner may have stored the same key first; theirs is as good.
                    with session.begin_nested():
                        session.add(row)
                    added += 1
                except IntegrityError:
                    pass
            session.commit()
        return added


def _from_row(row: Any) -> ReferenceOutput:
    """The cached output; raises (KeyError, TypeError, ValueError) on a row it cannot read."""
    tokens = [TokenLogprob.from_json(t) for t in row.tokens]
    # eos is the only stop, so fewer tokens than max_tokens means the model stopped itself.
    max_tokens = (row.params or {}).get("max_tokens")
    stopped = isinstance(max_tokens, int) and len(tokens) < max_tokens
    return ReferenceOutput(
        prompt=row.prompt,
        text=row.output_text,
        tokens=tokens,
        finish_reason="stop" if stopped else "length",
    )
