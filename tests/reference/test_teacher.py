"""Teacher forcing reproduces what the reference itself generated, token for token."""

from __future__ import annotations

import math

from canary.reference import continuation_logprobs
from canary.scoring.reference import shared_reference_model


def test_the_reference_scores_its_own_greedy_output_as_it_generated_it() -> None:
    model = shared_reference_model()
    prompts = ["Return the number of", "def add(a, b):\n    return", "The"]
    greedy = model.generate_greedy(prompts, max_tokens=12)
    scored = continuation_logprobs(
        model, [(p, g.text) for p, g in zip(prompts, greedy, strict=True)]
    )
    compared = 0
    for out, values in zip(greedy, scored, strict=True):
        retokenized = model.tokenizer(out.text, add_special_tokens=False)["input_ids"]
        if retokenized != out.token_ids:  # another tokenization of the same text: not comparable
            continue
        assert len(values) == len(out.tokens)
        for ours, generated in zip(values, out.tokens, strict=True):
            assert ours is not None and generated.logprob is not None
            assert math.isclose(ours, generated.logprob, abs_tol=2e-3)
        compared += 1
    assert compared >= 2, "the prompts must exercise the comparison"


def test_salad_is_less_likely_than_what_the_model_writes() -> None:
    model = shared_reference_model()
    prompt = "Return the number of"
    (greedy,) = model.generate_greedy([prompt], max_tokens=16)
    salad = " ".join(reversed(greedy.text.split())) + " zebra quantum fjord"
    own, shuffled = continuation_logprobs(model, [(prompt, greedy.text), (prompt, salad)])
    mean = lambda xs: -sum(x for x in xs if x is not None) / len(xs)  # noqa: E731
    assert mean(shuffled) > mean(own) + 1.0


def test_empty_outputs_and_batches_keep_their_order() -> None:
    model = shared_reference_model()
    pairs = [("The", ""), ("The", " end"), ("A", "")]
    values = continuation_logprobs(model, pairs, batch_size=2)
    assert [len(v) for v in values] == [
        0,
        len(model.tokenizer(" end", add_special_tokens=False)["input_ids"]),
        0,
    ]
