"""The reference runner on the shipped tiny model: batching, logprobs, sampling distributions."""

from __future__ import annotations

import math

import pytest

from canary.errors import ConfigError
from canary.reference import ReferenceModel

PROMPTS = [
    "Return the number of",
    "def add(a, b):\n    return",
    "x",
    "Raise ValueError if the path does not exist and the caller asked for it.",
]


@pytest.fixture(scope="module")
def ref() -> ReferenceModel:
    return ReferenceModel.load()


def test_batched_greedy_equals_unbatched(ref: ReferenceModel) -> None:
    batched = ref.generate_greedy(PROMPTS, max_tokens=12, top_logprobs=3)
    for prompt, out in zip(PROMPTS, batched, strict=True):
        (alone,) = ref.generate_greedy([prompt], max_tokens=12, top_logprobs=3)
        assert out.prompt == prompt
        assert out.token_ids == alone.token_ids
        assert out.text == alone.text
        assert out.finish_reason == alone.finish_reason
        for a, b in zip(out.tokens, alone.tokens, strict=True):
            assert a.token == b.token
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_logprobs_are_valid(ref: ReferenceModel) -> None:
    outputs = ref.generate_greedy(PROMPTS, max_tokens=10, top_logprobs=5)
    for out in outputs:
        assert out.finish_reason == "stop" or len(out.tokens) == 10
        assert out.text == ref.tokenizer.decode(out.token_ids, skip_special_tokens=True)
        for tok in out.tokens:
            assert tok.token == ref.tokenizer.decode([tok.token_id])
            assert math.isfinite(tok.logprob) and tok.logprob <= 0
            assert 1 <= len(tok.top) <= 5
            assert sum(math.exp(v) for v in tok.top.values()) <= 1 + 1e-5
            # Greedy: the chosen token is the likeliest, so it heads its own top list.
            assert tok.logprob == pytest.approx(max(tok.top.values()), abs=1e-6)
            assert tok.top[tok.token] == pytest.approx(tok.logprob, abs=1e-6)


def test_distribution_sums_to_one_and_respects_filters(ref: ReferenceModel) -> None:
    prompt = "Return the"
    full = ref.next_token_distribution_ids(prompt, temperature=1.0)
    assert len(full) == len(ref.tokenizer)
    assert sum(full.values()) == pytest.approx(1.0, abs=1e-9)
    likeliest = sorted(full.values(), reverse=True)

    top5 = ref.next_token_distribution_ids(prompt, temperature=1.0, top_k=5)
    assert len(top5) == 5
    assert sorted(top5.values(), reverse=True) == pytest.approx(
        [p / sum(likeliest[:5]) for p in likeliest[:5]], rel=1e-9
    )

    nucleus = ref.next_token_distribution_ids(prompt, temperature=1.0, top_p=0.5)
    assert sum(nucleus.values()) == pytest.approx(1.0, abs=1e-9)
    kept = sorted((full[t] for t in nucleus), reverse=True)
    assert kept == likeliest[: len(kept)]
    assert sum(kept) >= 0.5 - 1e-9  # reaches the threshold…
    assert sum(kept[:-1]) < 0.5  # …with the smallest prefix that does

    both = ref.next_token_distribution_ids(prompt, temperature=0.7, top_p=0.9, top_k=3)
    assert 1 <= len(both) <= 3

    by_text = ref.next_token_distribution(prompt, temperature=1.0, top_p=0.9)
    assert sum(by_text.values()) == pytest.approx(1.0, abs=1e-9)

    (greedy,) = ref.generate_greedy([prompt], max_tokens=1, top_logprobs=0)
    argmax = ref.next_token_distribution_ids(prompt, temperature=0.0)
    assert len(argmax) == 1
    if greedy.tokens:
        assert argmax == {greedy.tokens[0].token_id: 1.0}

    with pytest.raises(ValueError, match="top_p"):
        ref.next_token_distribution(prompt, top_p=0.0)


def test_fingerprint_is_stable(ref: ReferenceModel) -> None:
    again = ReferenceModel.load(ref.path)
    assert again.fingerprint == ref.fingerprint
    assert len(ref.fingerprint) == 64


def test_load_names_a_missing_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"config\.json"):
        ReferenceModel.load(tmp_path)
