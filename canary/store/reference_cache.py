"""The `reference_outputs` table: reference-model outputs cached by (model fingerprint, key).

Each row holds one greedy continuation and its positions as JSON (token, token_id, logprob,
top, and the token's bytes in hex when known; rows without them still read). Reading is
tolerant where rows seen in the field differ (a null or non-number logprob is
missing, such an alternative is left out) and strict where an output cannot be used without it
(the token and its id): a row that cannot be read is deleted and reported missing, so the
output is recomputed and cached in its place instead of failing every later pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from canary.records import TokenLogprob, finite_logprob
from canary.store.models import ReferenceOutputRow
from canary.store.repository import Store
from canary.store.rows import bytes_from_json, bytes_to_json

logger = logging.getLogger(__name__)

#: Keys per IN list, under SQLite's parameter limit.
_CHUNK = 500


@dataclass(frozen=True)
class CachedOutput:
    """One cached reference output, as stored."""

    cache_key: str
    prompt: str
    params: dict[str, Any]
    """What the output was computed with (``max_tokens``, ``top_logprobs``…)."""
    text: str
    tokens: list[TokenLogprob] = field(default_factory=list)


def position_to_json(position: TokenLogprob) -> dict[str, Any]:
    """The stored form of a position. A missing or non-finite logprob is written as null (JSON
    has no NaN) and a non-finite alternative is left out, so what is read back is what was
    meant."""
    logprob = finite_logprob(position.logprob)
    stored = {
        "token": position.token,
        "token_id": position.token_id,
        "logprob": logprob,
        "top": {k: v for k, v in position.top.items() if finite_logprob(v) is not None},
    }
    raw = bytes_to_json(position.bytes, "bytes")
    if raw is not None:
        stored["bytes"] = raw
    return stored


def position_from_json(data: Mapping[str, Any]) -> TokenLogprob:
    """A stored position; a null or non-number logprob (an old row) reads as None (missing)
    and such alternatives are dropped. Raises (KeyError, TypeError, ValueError) when the
    token or its id is absent."""
    top = data.get("top")
    return TokenLogprob(
        token=str(data["token"]),
        logprob=finite_logprob(data.get("logprob")),
        top={
            str(k): value
            for k, v in (top.items() if isinstance(top, dict) else ())
            if (value := finite_logprob(v)) is not None
        },
        token_id=int(data["token_id"]),
        bytes=bytes_from_json(data.get("bytes")),
    )


def get_reference_outputs(
    store: Store, fingerprint: str, keys: Iterable[str]
) -> dict[str, CachedOutput]:
    """The cached outputs of model `fingerprint` among `keys`, by key; missing keys (and rows
    that cannot be read, which are deleted) are simply absent."""
    wanted = sorted(set(keys))
    found: dict[str, CachedOutput] = {}
    unreadable: list[int] = []
    with Session(store.engine) as session:
        for start in range(0, len(wanted), _CHUNK):
            rows = session.scalars(
                select(ReferenceOutputRow).where(
                    ReferenceOutputRow.model_fingerprint == fingerprint,
                    ReferenceOutputRow.cache_key.in_(wanted[start : start + _CHUNK]),
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
            session.execute(delete(ReferenceOutputRow).where(ReferenceOutputRow.id.in_(unreadable)))
            session.commit()
    return found


def put_reference_outputs(store: Store, fingerprint: str, outputs: Iterable[CachedOutput]) -> int:
    """Store outputs of model `fingerprint`; returns how many were new (a key already stored,
    e.g. by a concurrent runner, keeps its row: it is as good)."""
    added = 0
    with Session(store.engine) as session:
        for output in outputs:
            row = ReferenceOutputRow(
                model_fingerprint=fingerprint,
                cache_key=output.cache_key,
                prompt=output.prompt,
                params=dict(output.params),
                output_text=output.text,
                tokens=[position_to_json(t) for t in output.tokens],
            )
            try:
                with session.begin_nested():
                    session.add(row)
                added += 1
            except IntegrityError:
                pass
        session.commit()
    return added


def _from_row(row: ReferenceOutputRow) -> CachedOutput:
    tokens = [position_from_json(t) for t in row.tokens]
    params = row.params or {}
    if not isinstance(params, dict):
        raise TypeError(f"params is {type(params).__name__}, not an object")
    return CachedOutput(row.cache_key, row.prompt, params, row.output_text, tokens)
