"""The reference tokenizer's special tokens reach the special_tokens detector: as a detector
argument (so the stored spec and fingerprint say so) and in a scoring run with a local
reference model."""

from __future__ import annotations

import sqlalchemy as sa

from canary.detectors import build_detector, default_detector
from canary.detectors.special_tokens import tokenizer_special_tokens
from canary.scoring import score_stored
from canary.scoring.reference import shared_reference_model
from canary.store import Store
from canary.store.models import DetectorSpecRow


def test_the_shipped_tokenizers_special_tokens() -> None:
    tokenizer = shared_reference_model("canary:tiny").tokenizer
    assert tokenizer_special_tokens(tokenizer) == ("<|bos|>", "<|eos|>", "<|pad|>")


def test_extra_tokens_are_part_of_the_spec_and_fingerprint() -> None:
    plain = default_detector("special_tokens")
    extra = build_detector("special_tokens", tokens=("<custom_sep>",))
    assert plain.spec.args == {"tokens": []}
    assert extra.spec.args == {"tokens": ["<custom_sep>"]}
    assert plain.spec.fingerprint != extra.spec.fingerprint
    assert plain.version == extra.version


def test_a_scoring_run_with_a_reference_records_its_special_tokens(store: Store) -> None:
    score_stored(store, reference=True)
    score_stored(store, reference=None)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(DetectorSpecRow.args).where(DetectorSpecRow.detector == "special_tokens")
        ).all()
    assert sorted(tuple(r.args["tokens"]) for r in rows) == [
        (),
        ("<|bos|>", "<|eos|>", "<|pad|>"),
    ]
