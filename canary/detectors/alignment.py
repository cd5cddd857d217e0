"""Endpoint and reference tokens aligned by their bytes, not their text.

A byte-level BPE token may end inside a UTF-8 character. Servers spell such a token as ``""``
(vLLM), as ``"\ufffd"`` (Hugging Face decode, the reference), as ``bytes:\\xe0\\xb8`` (OpenAI
legacy completions) or with a ``bytes`` list (OpenAI chat). Compared as text, ``""`` and
``"\ufffd"`` differ although they are the same token, and two different partial tokens look
equal. So each side is *spelled* as bytes: a token's own bytes when they are known; otherwise a
run of partial tokens between two known tokens spells the bytes of the output text at that
offset. Tokens are then grouped into character-aligned segments (a segment ends where its bytes
end on a character boundary) and the two sides are compared segment by segment. A position
whose bytes cannot be known is *not evidence*: it is neither agreement nor divergence.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from canary.records import (
    TokenLogprob,
    ambiguous_token_text,
    finite_logprob,
    token_key,
    whole_characters,
)

#: Logprobs this close (nats) are taken to belong to the same token when its key is ambiguous
#: (fp32 servers and the reference differ by ~1e-4 on the same token).
SAME_LOGPROB = 1e-3

_KEY_NOTATION = re.compile(r"(?:<0x[0-9A-Fa-f]{2}>)+")
_ESCAPED = re.compile(r"(?:bytes:)?((?:\\x[0-9A-Fa-f]{2})+)")


def key_bytes(text: str) -> bytes | None:
    """The bytes a token text or `top` key names, or None when it does not identify them.

    Understands `token_key`'s ``<0xE0><0xB8>`` notation and OpenAI's ``bytes:\\xe0\\xb8`` (the
    bare ``\\xe0\\xb8`` form only when it is not whole characters, so a literal ``\\x41`` in
    code stays text); ``""`` and text holding U+FFFD name no bytes.
    """
    if _KEY_NOTATION.fullmatch(text):
        return bytes(int(text[i + 3 : i + 5], 16) for i in range(0, len(text), 6))
    escaped = _ESCAPED.fullmatch(text)
    if escaped:
        raw = bytes(int(h, 16) for h in escaped.group(1).split("\\x")[1:])
        if text.startswith("bytes:") or not whole_characters(raw):
            return raw
    if ambiguous_token_text(text):
        return None
    return text.encode("utf-8")


def partial_key(key: str) -> bool:
    """Whether a `token_key` names part of a character (byte notation) or nothing at all."""
    raw = key_bytes(key)
    return raw is None or not whole_characters(raw)


def own_bytes(token: TokenLogprob) -> bytes | None:
    """A token's bytes from itself alone: its `bytes` when believable, else its text.

    Empty bytes are no token's, and bytes that decode to U+FFFD while the text is ambiguous are
    the server's encoding of its own replacement character (Ollama), not the token's bytes.
    """
    raw = token.bytes
    if raw and not (
        ambiguous_token_text(token.token)
        and whole_characters(raw)
        and "\ufffd" in raw.decode("utf-8")
    ):
        return raw
    return key_bytes(token.token)


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive tokens whose bytes together start and end on character boundaries."""

    start: int
    """Index of the first token."""
    stop: int
    """One past the last token."""
    data: bytes | None
    """The tokens' bytes together; None when they cannot be known."""
    char_offset: int | None
    """Character offset of the segment in the output text; None when not known."""

    @property
    def chars(self) -> int:
        """Characters the segment spells (0 when its bytes are unknown)."""
        return len(self.data.decode("utf-8", "replace")) if self.data is not None else 0


@dataclass(frozen=True)
class Spelling:
    """One side's tokens as bytes: each token's own bytes where known, and its segments."""

    exact: list[bytes | None]
    segments: list[Segment]
    segment_of: list[int] = field(default_factory=list)
    """Token index → index of its segment."""

    def key(self, index: int, token: TokenLogprob) -> str:
        """How the token at `index` is shown and looked up: `token_key` when its bytes are
        known, else the text the server sent."""
        raw = self.exact[index] if index < len(self.exact) else None
        return token_key(token.token, raw) if raw is not None else token.token

    def char_offset(self, index: int) -> int | None:
        """Character offset of token `index` (its segment's) in the text, when known."""
        if not 0 <= index < len(self.segment_of):
            return None
        return self.segments[self.segment_of[index]].char_offset

    def segment(self, index: int) -> Segment | None:
        return self.segments[self.segment_of[index]] if 0 <= index < len(self.segment_of) else None


def spell(tokens: Sequence[TokenLogprob], text: str | None) -> Spelling:
    """Each token's bytes and the character-aligned segments they form.

    Runs of tokens whose bytes are unknown (``""``/``"\ufffd"``) are filled from `text`: the
    run between two known tokens spells the text's bytes between them. Where the text does not
    match the known tokens (a stop sequence cut it, U+FFFD hides invalid bytes) the run stays
    unknown.
    """
    exact = [own_bytes(t) for t in tokens]
    runs = _fill_runs(exact, text)
    segments: list[Segment] = []
    segment_of: list[int] = []
    chars: int | None = 0
    start, pending, known, index = 0, b"", True, 0
    while index < len(tokens):
        index, data = runs.get(index, (index + 1, exact[index]))
        if data is None:
            known = False
        else:
            pending += data
        # A segment ends on a character boundary, at an unknown stretch, or at the end.
        if not known or index == len(tokens) or _at_boundary(pending):
            segment = Segment(start, index, pending if known else None, chars)
            segment_of += [len(segments)] * (index - start)
            segments.append(segment)
            chars = chars + segment.chars if chars is not None and known else None
            start, pending, known = index, b"", True
    return Spelling(exact, segments, segment_of)


def comparable_key(tokens: Sequence[TokenLogprob], text: str | None, index: int) -> str | None:
    """The `token_key` of token `index`, comparable with the reference's; None when its bytes
    cannot be known (a ``""``/U+FFFD token whose bytes neither it nor the text gives back)."""
    if not 0 <= index < len(tokens):
        return None
    raw = spell(tokens, text).exact[index]
    return token_key(tokens[index].token, raw) if raw is not None else None


def refine(
    tokens: Sequence[TokenLogprob],
    spelling: Spelling,
    other_tokens: Sequence[TokenLogprob],
    other: Spelling,
) -> Spelling:
    """Tell apart the tokens of a spelled run (``""`` ``""`` ``""`` → "马") using the other side.

    A token of the run whose logprob equals the other side's at the same position, and whose
    bytes there continue the run's, takes those bytes; the last one left takes what remains.
    Without bytes there is nothing to go on, and the run stays one segment.
    """
    exact = list(spelling.exact)
    for seg in spelling.segments:
        if seg.data is None or all(exact[i] is not None for i in range(seg.start, seg.stop)):
            continue
        offset = 0
        for i in range(seg.start, seg.stop):
            rest = seg.data[offset:]
            if exact[i] is None:
                after = range(i + 1, seg.stop)
                if all(exact[k] is not None for k in after):
                    tail = sum(len(exact[k] or b"") for k in after)
                    exact[i] = rest[: len(rest) - tail] or None
                elif _matches(tokens, other_tokens, other, i, rest, len(after)):
                    exact[i] = other.exact[i]
            own = exact[i]
            if own is None or not rest.startswith(own):
                for k in range(i, seg.stop):  # what cannot be told stays unknown
                    exact[k] = spelling.exact[k]
                break
            offset += len(own)
    return Spelling(exact, spelling.segments, spelling.segment_of)


def _matches(
    tokens: Sequence[TokenLogprob],
    other_tokens: Sequence[TokenLogprob],
    other: Spelling,
    i: int,
    rest: bytes,
    left: int,
) -> bool:
    """Whether the other side's token `i` is, by its logprob and bytes, this side's token `i`."""
    if i >= len(other_tokens) or i >= len(other.exact):
        return False
    candidate = other.exact[i]
    mine, theirs = finite_logprob(tokens[i].logprob), finite_logprob(other_tokens[i].logprob)
    return (
        candidate is not None
        and mine is not None
        and theirs is not None
        and abs(mine - theirs) <= SAME_LOGPROB
        and rest.startswith(candidate)
        and len(rest) - len(candidate) >= left
    )


def same_tokens(
    endpoint: Spelling, reference: Spelling, endpoint_len: int, reference_len: int
) -> list[bool | None]:
    """Per aligned position: the same token on both sides (True), not (False), or unknown.

    The sides are walked in step, stretch by stretch, where a stretch ends at the first token
    boundary both sides have on a character boundary. Equal bytes over the same tokens agree
    (unless both sides know a position's own bytes and they differ); a stretch whose bytes one
    side cannot know is unknown. Where the bytes differ the sides part: at the first position
    whose own bytes differ, else the stretch's first position. After that, positions are compared
    by their own bytes where both sides know them.
    """
    n = min(endpoint_len, reference_len)
    out: list[bool | None] = [None] * n
    e_segs, r_segs = endpoint.segments, reference.segments
    i_e = i_r = 0
    while i_e < len(e_segs) and i_r < len(r_segs):
        start = e_segs[i_e].start
        if start >= n or start != r_segs[i_r].start:
            break
        j_e, j_r = i_e, i_r
        while e_segs[j_e].stop != r_segs[j_r].stop:
            if e_segs[j_e].stop < r_segs[j_r].stop and j_e + 1 < len(e_segs):
                j_e += 1
            elif r_segs[j_r].stop < e_segs[j_e].stop and j_r + 1 < len(r_segs):
                j_r += 1
            else:
                break
        e_data = _joined(e_segs[i_e : j_e + 1])
        r_data = _joined(r_segs[i_r : j_r + 1])
        stop = min(e_segs[j_e].stop, r_segs[j_r].stop, n)
        common = e_segs[j_e].stop == r_segs[j_r].stop
        if e_data is None or r_data is None:
            if not common:
                break
        elif e_data == r_data and common:
            for i in range(start, stop):
                out[i] = _exact_equal(endpoint, reference, i, default=True)
        else:
            # They part in this stretch: at the first position whose own bytes differ, or,
            # where they are not known, the earliest it can be (the lookups stay cautious).
            for i in range(start, stop):
                out[i] = _exact_equal(endpoint, reference, i, default=False)
                if out[i] is not True:
                    break
            break
        i_e, i_r = j_e + 1, j_r + 1
    return [
        v if v is not None else _exact_equal(endpoint, reference, i, None)
        for i, v in enumerate(out)
    ]


def _joined(segments: Sequence[Segment]) -> bytes | None:
    parts = [s.data for s in segments]
    return b"".join(p for p in parts if p is not None) if None not in parts else None


@dataclass(frozen=True, slots=True)
class Keyed:
    """A position's finite logprobs by comparable key, and those whose key names no bytes."""

    known: dict[str, float]
    ambiguous: list[float]
    """Logprobs under keys that name no bytes (``""``, ``"\ufffd"``)."""
    collapsed: bool = False
    """Some key named no bytes: partial tokens may have collided on it, hiding alternatives."""


def keyed(position: TokenLogprob, own: bytes | None) -> Keyed:
    """The position's top-k plus its chosen token, keyed by `token_key`.

    Ambiguous keys (``""``, ``"\ufffd"``; several partial tokens may collide on one) are kept
    apart as bare logprobs, except the chosen token's own entry when its bytes are known and
    its logprob matches.
    """
    known: dict[str, float] = {}
    ambiguous: list[float] = []
    chosen = finite_logprob(position.logprob)
    own_key = token_key(position.token, own) if own is not None else None
    for key, value in (position.top or {}).items():
        lp = finite_logprob(value)
        if lp is None:
            continue
        raw = key_bytes(key)
        if raw is not None:
            canonical = token_key(key, raw)
        elif (
            own_key is not None
            and chosen is not None
            and key == position.token
            and abs(lp - chosen) <= SAME_LOGPROB
        ):
            canonical = own_key
        else:
            ambiguous.append(lp)
            continue
        if lp > known.get(canonical, -math.inf):
            known[canonical] = lp
    if own_key is not None and chosen is not None:
        known.setdefault(own_key, chosen)
    collapsed = any(key_bytes(k) is None for k in position.top or {})
    return Keyed(known, ambiguous, collapsed)


def _fill_runs(exact: list[bytes | None], text: str | None) -> dict[int, tuple[int, bytes | None]]:
    """Start index → (stop, bytes) of each run of unknown tokens, spelled from the text."""
    runs: dict[int, tuple[int, bytes | None]] = {}
    data = text.encode("utf-8") if text is not None else None
    cursor: int | None = 0
    i = 0
    while i < len(exact):
        if exact[i] is not None:
            own = exact[i] or b""
            if data is not None and cursor is not None:
                cursor = cursor + len(own) if data.startswith(own, cursor) else None
            i += 1
            continue
        j = i
        while j < len(exact) and exact[j] is None:
            j += 1
        spelled: bytes | None = None
        if data is not None and cursor is not None:
            end = _next_known(data, cursor + (j - i), exact[j] if j < len(exact) else None)
            if end is not None:
                spelled = data[cursor:end]
                cursor = end
            else:
                cursor = None
        if spelled is not None and (b"\xef\xbf\xbd" in spelled or len(spelled) < j - i):
            spelled = None  # U+FFFD in the text hides what the bytes were
        if spelled is None:
            for k in range(i, j):
                runs[k] = (k + 1, None)
        elif j - i == 1:
            exact[i] = spelled
        else:
            runs[i] = (j, spelled)
        i = j
    return runs


def _next_known(data: bytes, earliest: int, following: bytes | None) -> int | None:
    """Where the known token after a run starts in the text (the end of the text when none):
    its first occurrence at or after `earliest` that begins a character."""
    if following is None:
        return len(data) if earliest <= len(data) else None
    at = data.find(following, earliest)
    while at >= 0 and at < len(data) and 0x80 <= data[at] < 0xC0:
        at = data.find(following, at + 1)
    return at if at >= 0 else None


def _at_boundary(pending: bytes) -> bool:
    """Whether `pending` does not end inside a multi-byte character."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    decoder.decode(pending)
    return not decoder.getstate()[0]


def _exact_equal(
    endpoint: Spelling, reference: Spelling, index: int, default: bool | None
) -> bool | None:
    e = endpoint.exact[index] if index < len(endpoint.exact) else None
    r = reference.exact[index] if index < len(reference.exact) else None
    if e is None or r is None:
        return default
    return e == r
