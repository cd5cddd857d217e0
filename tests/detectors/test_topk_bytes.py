"""Tokens compared by bytes: however a server writes a token that ends inside a character, the
same bytes agree, and a real divergence is still flagged."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from canary.detectors.alignment import key_bytes, own_bytes, spell
from canary.detectors.topk import compare_to_reference, greedy_not_argmax
from canary.detectors.topk_evidence import divergence_span, token_offset
from canary.records import TokenLogprob, token_key, whole_characters

Alternatives = list[tuple[bytes, float]]
"""One position: the chosen token first, then the other alternatives, as (bytes, logprob)."""

# "The ざ马。": " ざ" is split 20 E3 81 | 96, "马" into three single bytes, "。" is whole.
POSITIONS: list[Alternatives] = [
    [(b"The", -0.1), (b"A", -2.5)],
    [(b" \xe3\x81", -0.3), (b" \xe3\x82", -1.9), (b" the", -2.4)],
    [(b"\x96", -0.05), (b"\x95", -3.2), (b"\x97", -3.6)],
    [(b"\xe9", -1.2), (b"\xe5", -1.3), (b"\xe7", -1.31), (b"\xe3\x80\x82", -2.0)],
    [(b"\xa9", -0.4), (b"\xab", -0.5), (b"\x92", -0.7)],
    [(b"\xac", -0.2), (b"\xba", -2.2), (b"\xe3\x80\x82", -2.9)],
    [(b"\xe3\x80\x82", -0.6), (b"\n", -1.0)],
]
TEXT = b"".join(p[0][0] for p in POSITIONS).decode()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def reference_style(alts: Alternatives) -> TokenLogprob:
    """The reference: decoded text, exact bytes, `top` keyed by `token_key`."""
    (raw, lp) = alts[0]
    return TokenLogprob(_text(raw), lp, {token_key(_text(r), r): v for r, v in alts}, bytes=raw)


def ranked(alts: Alternatives) -> Alternatives:
    """The alternatives in rank order, as servers list them."""
    return sorted(alts, key=lambda a: a[1], reverse=True)


def old_reference_style(alts: Alternatives) -> TokenLogprob:
    """A reference without bytes: partial alternatives collapse onto one U+FFFD key (the
    likelier kept)."""
    top: dict[str, float] = {}
    for r, v in ranked(alts):
        top.setdefault(_text(r), v)
    return TokenLogprob(_text(alts[0][0]), alts[0][1], top)


def replacement_style(alts: Alternatives) -> TokenLogprob:
    return old_reference_style(alts)


def empty_style(alts: Alternatives) -> TokenLogprob:
    """vLLM: `""` for a partial token; in the legacy map the last colliding one wins."""
    written = [(r.decode() if whole_characters(r) else "", v) for r, v in ranked(alts)]
    return TokenLogprob(
        "" if not whole_characters(alts[0][0]) else alts[0][0].decode(), alts[0][1], dict(written)
    )


def bytes_legacy_style(alts: Alternatives) -> TokenLogprob:
    """OpenAI completions: `bytes:\\xNN` for a partial token."""

    def spell_one(r: bytes) -> str:
        return r.decode() if whole_characters(r) else "bytes:" + "".join(f"\\x{b:02x}" for b in r)

    return TokenLogprob(spell_one(alts[0][0]), alts[0][1], {spell_one(r): v for r, v in alts})


def bytes_chat_style(alts: Alternatives) -> TokenLogprob:
    """OpenAI chat: a `bytes` list, which the adapter keys by `token_key`."""
    raw, lp = alts[0]
    text = raw.decode() if whole_characters(raw) else "".join(f"\\x{b:02x}" for b in raw)
    return TokenLogprob(text, lp, {token_key("?", r): v for r, v in alts}, bytes=raw)


def ollama_style(alts: Alternatives) -> TokenLogprob:
    """U+FFFD with the bytes of U+FFFD: bytes that are not the token's."""
    token = old_reference_style(alts)
    return TokenLogprob(token.token, token.logprob, token.top, bytes=token.token.encode())


STYLES: dict[str, Callable[[Alternatives], TokenLogprob]] = {
    "replacement": replacement_style,
    "empty": empty_style,
    "bytes-legacy": bytes_legacy_style,
    "bytes-chat": bytes_chat_style,
    "ollama": ollama_style,
}
REFERENCES = {"reference": reference_style, "old-reference": old_reference_style}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("ref", REFERENCES)
def test_the_same_tokens_agree_however_they_are_written(style: str, ref: str) -> None:
    endpoint = [STYLES[style](p) for p in POSITIONS]
    reference = [REFERENCES[ref](p) for p in POSITIONS]
    result = compare_to_reference(endpoint, reference, TEXT, TEXT)
    assert result.method == "logprobs"
    assert result.first_divergence is None and not result.confident_divergence
    assert result.top1_agreement == 1.0 and result.prefix_agreement == 1.0
    assert result.not_argmax == 0.0
    assert result.mean_logprob_gap == 0.0
    assert not any(s.flagged for s in result.to_scores())


def test_partial_tokens_are_spelled_from_the_text() -> None:
    endpoint = [empty_style(p) for p in POSITIONS]
    spelled = spell(endpoint, TEXT)
    # The run of five `""` between "The" and "。" spells " ざ马" together.
    assert spelled.exact == [b"The", None, None, None, None, None, "。".encode()]
    assert [(s.start, s.stop, s.data) for s in spelled.segments] == [
        (0, 1, b"The"),
        (1, 6, " ざ马".encode()),
        (6, 7, "。".encode()),
    ]
    assert [spelled.char_offset(i) for i in range(7)] == [0, 3, 3, 3, 3, 3, 6]
    assert token_offset(endpoint, TEXT, 4) == 3
    # With bytes known, segments end on each character boundary.
    exact = spell([bytes_chat_style(p) for p in POSITIONS], TEXT)
    assert [(s.start, s.stop) for s in exact.segments] == [(0, 1), (1, 3), (3, 6), (6, 7)]
    assert [exact.char_offset(i) for i in range(7)] == [0, 3, 3, 5, 5, 5, 6]


def test_colliding_empty_keys_raise_no_flag_and_count_as_unknown() -> None:
    """Three partial alternatives on one `""` key keep the last (least likely) logprob: the
    chosen token is still its own argmax, and the reference top-1 is not called missing."""
    endpoint = [empty_style(p) for p in POSITIONS]
    assert endpoint[4].top == {"": -0.7}
    share, _ = greedy_not_argmax(endpoint)
    assert share == 0.0
    result = compare_to_reference(endpoint, [reference_style(p) for p in POSITIONS], TEXT, TEXT)
    assert result.ref_top1_in_topk == 1.0


def test_a_confident_divergence_to_a_partial_token_is_flagged() -> None:
    """Corrupt logits: where the reference is sure of " the", the endpoint starts a character."""
    reference = [
        reference_style([(b"The", -0.1)]),
        reference_style([(b" the", -0.05), (b" a", -3.5), (b" \xe3\x81", -6.0)]),
    ]
    for style in STYLES.values():
        endpoint = [style([(b"The", -0.1)]), style([(b" \xe3\x81", -0.2), (b" the", -3.0)])]
        endpoint += [style([(b"\x96", -0.1)])]
        result = compare_to_reference(endpoint, reference, "The ざ", "The the")
        assert result.first_divergence == 1
        assert result.confident_divergence
        assert result.divergence is not None
        assert result.divergence["reference_gap_nats"] == pytest.approx(5.95)
        assert result.divergence["offset"] == 3
        spans = divergence_span("The ざ", endpoint, result.divergence)
        assert [(s.start, s.end) for s in spans] == [(3, 5)]


def test_a_different_partial_token_is_a_divergence_flagged_when_bytes_are_known() -> None:
    """Inside a character: the endpoint takes 95 where the reference was sure of 96."""
    reference = [reference_style(p) for p in POSITIONS[:3]]
    wrong = [(b"\x95", -0.1), (b"\x96", -3.0)]
    text = b"The \xe3\x81\x95".decode()
    # With `""` the run is told apart by the logprob of the token both sides share.
    for style in (bytes_chat_style, bytes_legacy_style, empty_style, replacement_style):
        endpoint = [style(POSITIONS[0]), style(POSITIONS[1]), style(wrong)]
        result = compare_to_reference(endpoint, reference, text, TEXT[:5])
        assert result.first_divergence == 2
        assert result.confident_divergence, style.__name__
        assert result.divergence is not None
        assert result.divergence["reference_gap_nats"] == pytest.approx(3.15)
    # A reference whose partial alternatives collapsed onto one U+FFFD key cannot say how
    # likely the endpoint's partial token was: measured, not flagged.
    collapsed = [old_reference_style(p) for p in POSITIONS[:3]]
    endpoint = [bytes_chat_style(POSITIONS[0]), bytes_chat_style(POSITIONS[1])]
    endpoint.append(bytes_chat_style(wrong))
    result = compare_to_reference(endpoint, collapsed, text, TEXT[:5])
    assert result.first_divergence == 2 and not result.confident_divergence


def test_a_dropped_top_token_is_still_caught_among_partial_tokens() -> None:
    """Approximate top-k: the endpoint's own logprobs rank E5 first, it emitted E7."""
    dropped = [(b"\xe7", -1.31), (b"\xe5", -1.3), (b"\xe9", -1.2)]
    for style in STYLES.values():
        endpoint = [style(p) for p in POSITIONS[:3]] + [style(dropped)]
        share, evidence = greedy_not_argmax(endpoint)
        if style is empty_style:  # all three collide on "": the drop cannot be seen
            assert share == 0.0
            continue
        assert share == pytest.approx(1 / 4), style.__name__
        assert evidence is not None and evidence["index"] == 3


def test_invalid_bytes_hidden_by_replacement_characters_are_not_evidence() -> None:
    """A model that emits bytes forming no character: the text shows U+FFFD, the bytes are
    lost, and the position is neither agreement nor divergence."""
    alts = [[(b"A", -0.1)], [(b"\xa9", -0.5), (b"\xab", -0.6)], [(b"B", -0.2)]]
    text = "A\ufffdB"
    endpoint = [empty_style(p) for p in alts]
    result = compare_to_reference(endpoint, [old_reference_style(p) for p in alts], text, text)
    assert result.first_divergence is None and not result.confident_divergence
    assert result.top1_agreement == 1.0  # of the two positions that could be judged


def test_key_bytes_reads_every_spelling_of_a_partial_token() -> None:
    assert key_bytes("<0xE0><0xB8>") == b"\xe0\xb8"
    assert key_bytes("bytes:\\xe0\\xb8") == b"\xe0\xb8"
    assert key_bytes("\\xe0\\xb8") == b"\xe0\xb8"
    assert key_bytes("\\x41") == b"\\x41"  # whole characters: literal text, as in code
    assert key_bytes("") is None and key_bytes("\ufffd") is None and key_bytes("a\ufffd") is None
    assert key_bytes(" the") == b" the"
    assert own_bytes(TokenLogprob("", -1.0, bytes=b"")) is None
    assert own_bytes(TokenLogprob("\ufffd", -1.0, bytes=b"\xef\xbf\xbd")) is None
    assert own_bytes(TokenLogprob("\ufffd", -1.0, bytes=b"\xe9")) == b"\xe9"
