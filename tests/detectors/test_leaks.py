"""Special tokens and tokenizer markers written out as text, and their legitimate look-alikes."""

from __future__ import annotations

import pytest

from canary.detectors import build_detector, default_detector
from canary.detectors.markers import find_markers
from canary.detectors.special_tokens import find_special_tokens
from tests.detectors.inputs import given


def flagged(name: str, text: str, **kw: object) -> bool:
    scores = default_detector(name).score(given(text, "generic", **kw))  # type: ignore[arg-type]
    return any(s.flagged for s in scores)


@pytest.mark.parametrize(
    "text",
    [
        "Sure.<|eot_id|>",
        "<|reserved_special_token_247|><|reserved_special_token_247|>",
        "I<｜begin▁of▁sentence｜><｜begin▁of▁sentence｜>",
        "hovers nearby*[INST0]",
        "[/INST] and <</SYS>>",
        " [PAD] [PAD] [PAD]",
        "gegründ[control_234][control_129]",
        "잠 <0xEA><0xB9><0xB0> 수",
        "春风轻拂绿意新，|assistant|助时光荏苒。",
        "The answer is 4.</s>",
        "<unused12><unused12>",
    ],
)
def test_special_tokens_are_flagged(text: str) -> None:
    assert flagged("special_tokens", text)


@pytest.mark.parametrize(
    "text",
    [
        "Use <s>strikethrough</s> for removed text.",
        "In Haskell, f <|> g tries f, then g; x |> f pipes x into f.",
        "| user | assistant |\n|---|---|",
        "The `<pre>` tag keeps whitespace.",
    ],
)
def test_look_alikes_are_not_flagged(text: str) -> None:
    assert not flagged("special_tokens", text)


def test_a_token_the_prompt_asked_about_is_not_a_leak() -> None:
    prompt = "What does <|eot_id|> do?"
    assert not flagged("special_tokens", "It ends a turn: <|eot_id|>.", prompt=prompt)
    assert flagged("special_tokens", "It ends a turn: <|eot_id|>.", prompt="What ends a turn?")


def test_the_reference_tokenizers_own_tokens_are_matched_literally() -> None:
    detector = build_detector("special_tokens", tokens=("<custom_sep>",))
    [score] = detector.score(given("one<custom_sep>two", "generic"))
    assert score.flagged and score.evidence is not None
    assert score.evidence["tokens"] == ["<custom_sep>"]
    assert score.evidence["spans"][0]["start"] == 3
    assert find_special_tokens("one<custom_sep>two") == []


def test_byte_level_and_sentencepiece_markers_are_flagged() -> None:
    assert flagged("tokenizer_markers", "ĠI'mĠtryingĠtoĠunderstand")
    assert flagged("tokenizer_markers", "first lineĊĊsecond line")
    assert flagged("tokenizer_markers", " ▁▁ three spaces")
    assert flagged("tokenizer_markers", "the▁cat▁sat")
    assert flagged("tokenizer_markers", "play ##ing")
    assert flagged("tokenizer_markers", ')." ⁇ !+,')


@pytest.mark.parametrize(
    "text",
    [
        "Il-Ġimgħa li għaddiet, Ċensu mar il-Belt. Ġużeppi qal li l-Ċentru kien magħluq.",
        "Latency: ▁▂▃▅▇█▇▅▃▂▁ (peak 340 ms).",
        "## Heading\n\nBody text.",
        "Ĉiu tago, ĉar mi aĉetas panon.",
    ],
)
def test_real_letters_and_block_elements_are_not_markers(text: str) -> None:
    assert find_markers(text) == []
