"""Special and control tokens leaked into the text: a detokenizer or stop-token bug.

Real servers have shipped ``<|reserved_special_token_247|>`` repeated (vLLM#13035),
``<｜begin▁of▁sentence｜>`` repeated until cut (SGLang#12824), ``[PAD] [PAD] …`` (ollama#15830),
``[control_234]`` (vLLM#6305), ``[INST0]`` (ollama#3562) and byte-fallback pieces such as
``<0xEA><0xB9><0xB0>`` in place of a Korean syllable. Every one of them is Common or Latin
script, so the script detector passes them. A token that also appears in the prompt is the
user's own text (a question about chat templates), not a leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Metric, rate
from canary.detectors.registry import register_detector
from canary.detectors.spans import explained, spans_evidence

# Generic shapes of special tokens across tokenizer families; each alternative is one family.
_GENERIC = regex.compile(
    r"<\|[^\s|<>]{1,64}\|>"  # <|eot_id|>, <|im_end|>, <|reserved_special_token_0|>
    r"|<｜[^\s｜<>]{1,64}｜>"  # DeepSeek's fullwidth bars: <｜end▁of▁sentence｜>
    r"|(?<![\p{Latin}\d|])\|(?:assistant|user|system|observation)\|(?![\p{Latin}\d|])"  # ChatGLM
    r"|\[/?INST\d*\]|<</?SYS>>"  # Llama 2 chat markup
    r"|\[(?:PAD|UNK|CLS|SEP|MASK)\]|\[(?:control|unused)_?\d+\]"  # BERT-style, Mistral control
    r"|<(?:pad|unk|eos|bos|eot|unused\d+|extra_id_\d+|start_of_turn|end_of_turn)>"
    r"|<0x[0-9A-Fa-f]{2}>"  # SentencePiece byte fallback
)
# `<s>` and `</s>` are also HTML strikethrough: only an unpaired one is a leak.
_S_TAG = regex.compile(r"</?s>")
_CLEAN = Score("special_token_leak", 0.0)  # frozen: one shared value serves every clean output


def _unpaired_s_tags(text: str) -> list[tuple[int, int]]:
    opened: list[tuple[int, int]] = []
    lone: list[tuple[int, int]] = []
    for m in _S_TAG.finditer(text):
        if m.group() == "<s>":
            opened.append(m.span())
        elif opened:
            opened.pop()
        else:
            lone.append(m.span())
    return sorted(lone + opened)


def _may_hold_shapes(text: str) -> bool:
    """Whether ``text`` has a character every `_GENERIC` and `_S_TAG` match contains."""
    return "<" in text or "[" in text or "|" in text


def find_special_tokens(
    text: str, extra: tuple[str, ...] = (), prompt: str | None = None
) -> list[tuple[int, int, str]]:
    """(start, end, token) of every special token in ``text`` that the prompt does not hold."""
    found: list[tuple[int, int, str]] = []
    if _may_hold_shapes(text):
        found += [(m.start(), m.end(), m.group()) for m in _GENERIC.finditer(text)]
        found += [(s, e, text[s:e]) for s, e in _unpaired_s_tags(text)]
    for token in extra:
        if not token:
            continue
        at = text.find(token)
        while at >= 0:
            found.append((at, at + len(token), token))
            at = text.find(token, at + len(token))
    seen: set[tuple[int, int]] = set()
    unique = []
    for start, end, token in sorted(found):
        if (start, end) in seen or (prompt and token in prompt):
            continue
        seen.add((start, end))
        unique.append((start, end, token))
    return unique


def tokenizer_special_tokens(tokenizer: object) -> tuple[str, ...]:
    """The special tokens of a Hugging Face tokenizer (its named ones and every added token
    marked special), sorted: what a reference model hands this detector as ``tokens``, so a
    family's own markup is caught even where no generic shape matches it."""
    found = {str(t) for t in getattr(tokenizer, "all_special_tokens", None) or ()}
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    found |= {str(t.content) for t in added.values() if getattr(t, "special", False)}
    return tuple(sorted(t for t in found if t.strip()))


@register_detector
@dataclass(frozen=True)
class SpecialTokenDetector(Detector):
    """Flags special, control and byte-fallback tokens written out as text."""

    name: ClassVar[str] = "special_tokens"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "special_token_leak",
            0.003,
            critical=True,
            reason="healthy servers leak no special token; each one is a detokenizer or "
            "stop-token bug in front of users. 0.3% is the smallest rise a gate can rule out "
            "within 4,000 clean probes per side, so a healthy deploy can pass",
            explain=explained("special_token_leak", ("tokens", "count")),
        ),
    )

    tokens: tuple[str, ...] = ()
    """Extra special tokens matched literally besides the generic shapes (default none): with a
    local reference model, its tokenizer's (`tokenizer_special_tokens`). They are arguments, so
    they are part of the stored detector spec and its fingerprint."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        text = inp.output_text or ""
        if not self.tokens and not _may_hold_shapes(text):
            return [_CLEAN]  # nothing to find; skip the prompt too
        found = find_special_tokens(text, self.tokens, inp.probe.as_prompt())
        if not found:
            return [_CLEAN]
        distinct = sorted({token for _, _, token in found})
        evidence = spans_evidence(
            text,
            [(s, e, "special token") for s, e, _ in found],
            tokens=distinct[:10],
            count=len(found),
        )
        return [Score("special_token_leak", 1.0, flagged=True, evidence=evidence)]
