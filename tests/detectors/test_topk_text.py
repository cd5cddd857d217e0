"""Divergence of an endpoint that returns text only, judged by the reference's own top-k."""

from __future__ import annotations

from canary.detectors.topk import compare_to_reference
from canary.detectors.topk_text import text_divergence
from canary.records import TokenLogprob, token_key


def ref(text: str, logprob: float, **alternatives: float) -> TokenLogprob:
    raw = text.encode()
    top = {token_key(text, raw): logprob}
    top |= {token_key(k, k.encode()): v for k, v in alternatives.items()}
    return TokenLogprob(token=text, logprob=logprob, top=top, bytes=raw)


REFERENCE = [
    ref("The", -0.1, A=-3.0),
    ref(" cat", -0.2, **{" dog": -0.25, " cow": -4.0}),
    ref(" sat", -0.1, **{" ran": -5.0}),
]
REFERENCE_TEXT = "The cat sat"


def test_identical_text_is_no_divergence() -> None:
    agreement = compare_to_reference(None, REFERENCE, REFERENCE_TEXT, REFERENCE_TEXT)
    assert agreement.method == "text"
    assert agreement.first_divergence is None
    assert not agreement.confident_divergence
    assert text_divergence(REFERENCE_TEXT, REFERENCE) is None


def test_a_near_tie_is_measured_not_flagged() -> None:
    agreement = compare_to_reference(None, REFERENCE, "The dog sat", REFERENCE_TEXT)
    assert agreement.first_divergence == 4  # a character offset: "The " then c or d
    assert agreement.divergence is not None
    assert agreement.divergence["endpoint_alternative"] == " dog"
    assert abs(agreement.divergence["reference_gap_nats"] - 0.05) < 1e-9
    assert not agreement.confident_divergence


def test_a_token_the_reference_ruled_out_is_flagged() -> None:
    agreement = compare_to_reference(None, REFERENCE, "The cow sat", REFERENCE_TEXT)
    assert agreement.confident_divergence
    assert agreement.divergence is not None
    assert abs(agreement.divergence["reference_gap_nats"] - 3.8) < 1e-9


def test_a_token_outside_the_top_k_is_flagged_on_a_lower_bound() -> None:
    seen = text_divergence("The cat flew", REFERENCE)
    assert seen is not None and seen.lower_bound and seen.endpoint_token is None
    assert seen.position == 2 and abs(seen.gap_nats - 4.9) < 1e-9
    assert compare_to_reference(
        None, REFERENCE, "The cat flew", REFERENCE_TEXT
    ).confident_divergence


def test_a_longer_token_than_the_reference_is_found_one_position_back() -> None:
    reference = [ref("We", -0.1), ref(" the", -0.3, **{" then": -0.35}), ref(" end", -0.1)]
    seen = text_divergence("We then go", reference)
    assert seen is not None and seen.endpoint_token == " then" and seen.position == 1
    assert not compare_to_reference(
        None, reference, "We then go", "We the end"
    ).confident_divergence


def test_an_endpoint_that_stopped_early_is_not_judged_by_text() -> None:
    agreement = compare_to_reference(None, REFERENCE, "The cat", REFERENCE_TEXT)
    assert agreement.first_divergence == 7
    assert not agreement.confident_divergence


def test_partial_characters_are_compared_by_bytes() -> None:
    thai = "ก".encode()  # three bytes, split over two byte-level tokens
    first = TokenLogprob(
        token="\ufffd", logprob=-0.1, top={token_key("", thai[:2]): -0.1}, bytes=thai[:2]
    )
    second = TokenLogprob(
        token="\ufffd",
        logprob=-0.2,
        top={token_key("", thai[2:]): -0.2, token_key("", b"\x82"): -6.0},
        bytes=thai[2:],
    )
    reference = [first, second]
    assert text_divergence("ก", reference) is None
    wrong = (thai[:2] + b"\x82").decode()  # ข: the second byte token swapped
    seen = text_divergence(wrong, reference)
    assert seen is not None and seen.position == 1 and abs(seen.gap_nats - 5.8) < 1e-9
