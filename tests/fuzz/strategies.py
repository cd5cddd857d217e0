"""Hypothesis strategies for hostile replies: OpenAI- and Anthropic-shaped bodies with hostile
leaves, raw bytes, odd headers, status codes and framings, as `tests.support.hostile_server.Reply`
values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.support.hostile_server import ESCAPE_TEXT, Reply

OPENAI_FLAVOURS = ("openai-completions", "openai-chat")
FLAVOURS = (*OPENAI_FLAVOURS, "anthropic-messages")
#: Generated replies per hostile endpoint and round: one per request of the fuzz suite.
REPLIES = 11

#: Strings a hostile server likes: lone surrogates, NUL, controls, bidi, escapes, markup, the key.
_NASTY_STRINGS = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "nul\x00in\x00text",
    "\x1b[2J",
    "\x1b]0;title\x07",
    "\u202eevil",
    "\u2066x\u2069",
    "\x85\x9b\x7f",
    "[link=http://evil]x[/link]",
    "[/]",
    "$KEY",
    "NaN",
    "",
    " ",
    "\ufeff",
    "\U0010ffff",
    "é\u0301",
    ESCAPE_TEXT,
    "x" * 5000,
]


@dataclass(frozen=True)
class Raw:
    """A raw JSON fragment spliced into the serialised body (JSON the encoder cannot write)."""

    text: str


_RAW = st.sampled_from(
    [
        Raw("NaN"),
        Raw("Infinity"),
        Raw("-Infinity"),
        Raw("1" * 5000),  # more digits than Python's int parser accepts by default
        Raw("1e400"),
        Raw("-0.0"),
        Raw("[" * 3000 + "]" * 3000),
        Raw('{"a":' * 2000 + "1" + "}" * 2000),
        Raw('"\\ud800"'),
        Raw('"\\udc00\\ud800"'),
        Raw('"\\u0000"'),
    ]
)

text_leaf = st.one_of(
    st.sampled_from(_NASTY_STRINGS),
    st.text(st.characters(exclude_categories=()), max_size=40),  # surrogates included
    st.text(max_size=20),
)
number_leaf = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 1e308, 5e-324]),
)
scalar = st.one_of(text_leaf, number_leaf, st.booleans(), st.none(), _RAW)
any_json: st.SearchStrategy[Any] = st.recursive(
    scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(text_leaf, children, max_size=4),
    ),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any], p_hostile: int = 5) -> st.SearchStrategy[Any]:
    """`strategy` mostly; one time in `p_hostile` any JSON value instead (a wrong type)."""
    return st.one_of(*([strategy] * (p_hostile - 1)), any_json)


logprob = maybe(st.floats(max_value=0.0, allow_nan=False), 3)
finish = maybe(st.sampled_from(["stop", "length", "content_filter", None]), 3)


@st.composite
def completions_logprobs(draw: st.DrawFn) -> Any:
    n = draw(st.integers(0, 4))
    tokens = draw(st.lists(maybe(text_leaf, 8), min_size=n, max_size=n))
    # Lists of a different length now and then: the adapter must classify, not crash.
    m = n if draw(st.integers(0, 6)) else draw(st.integers(0, 5))
    values = draw(st.lists(logprob, min_size=m, max_size=m))
    tops = draw(
        st.lists(
            maybe(st.dictionaries(text_leaf, logprob, max_size=3), 6) | st.none(),
            min_size=n,
            max_size=n,
        )
    )
    return {
        "tokens": tokens,
        "token_logprobs": draw(maybe(st.just(values), 8)),
        "top_logprobs": draw(maybe(st.just(tops), 8)),
    }


@st.composite
def chat_logprobs(draw: st.DrawFn) -> Any:
    top = st.fixed_dictionaries({"token": maybe(text_leaf, 8), "logprob": logprob})
    item = st.fixed_dictionaries(
        {
            "token": maybe(text_leaf, 8),
            "logprob": logprob,
            "top_logprobs": maybe(st.lists(maybe(top, 8), max_size=3), 8),
        },
        optional={"bytes": any_json},
    )
    return {"content": draw(maybe(st.lists(maybe(item, 10), max_size=4), 8))}


@st.composite
def openai_body(draw: st.DrawFn, chat: bool) -> Any:
    """A body of the flavour's shape, every field possibly hostile, missing or mistyped."""
    if chat:
        message = st.fixed_dictionaries(
            {"role": st.just("assistant"), "content": maybe(text_leaf | st.none(), 6)}
        )
        choice = st.fixed_dictionaries(
            {"index": st.just(0), "message": maybe(message, 8)},
            optional={
                "finish_reason": finish,
                "logprobs": maybe(chat_logprobs() | st.none(), 6),
            },
        )
    else:
        choice = st.fixed_dictionaries(
            {"index": st.just(0), "text": maybe(text_leaf, 8)},
            optional={
                "finish_reason": finish,
                "logprobs": maybe(completions_logprobs() | st.none(), 6),
            },
        )
    usage = st.dictionaries(
        st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "x"]),
        number_leaf | any_json,
        max_size=3,
    )
    return draw(
        st.fixed_dictionaries(
            {"choices": maybe(st.lists(maybe(choice, 10), min_size=1, max_size=2), 8)},
            optional={"usage": usage, "id": text_leaf, "model": any_json, "extra": any_json},
        )
    )


@st.composite
def anthropic_body(draw: st.DrawFn) -> Any:
    """A Messages API body (or error body), every field possibly hostile, missing or mistyped."""
    text_block = st.fixed_dictionaries({"type": st.just("text"), "text": maybe(text_leaf, 8)})
    other_block = st.fixed_dictionaries(
        {"type": maybe(st.sampled_from(["tool_use", "thinking", "text"]), 4)},
        optional={"id": text_leaf, "input": any_json, "text": any_json},
    )
    usage = st.dictionaries(
        st.sampled_from(["input_tokens", "output_tokens", "cache_read_input_tokens", "x"]),
        number_leaf | any_json,
        max_size=3,
    )
    error = st.fixed_dictionaries({"type": maybe(text_leaf, 3), "message": maybe(text_leaf, 3)})
    return draw(
        st.fixed_dictionaries(
            {
                "type": maybe(st.sampled_from(["message"] * 4 + ["error"]), 6),
                "content": maybe(st.lists(maybe(text_block | other_block, 8), max_size=3), 8),
            },
            optional={
                "stop_reason": maybe(
                    st.sampled_from(["end_turn", "max_tokens", "stop_sequence", "tool_use", None]),
                    3,
                ),
                "usage": usage,
                "error": maybe(error, 3),
                "model": any_json,
            },
        )
    )


def shaped_body(flavour: str) -> st.SearchStrategy[Any]:
    """A body of `flavour`'s wire format."""
    if flavour == "anthropic-messages":
        return anthropic_body()
    return openai_body(flavour == "openai-chat")


def encode(value: Any, *, ascii_only: bool) -> bytes:
    """JSON bytes of `value`, `Raw` fragments spliced in; NaN/Infinity written as literals.

    Without `ascii_only` a lone surrogate is written as its (invalid) UTF-8-style bytes.
    """
    raws: list[str] = []

    def swap(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(v.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), ensure_ascii=ascii_only)
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{i}\\u0000"', raw)
    return text.encode("utf-8", "surrogatepass")


_HEADER_VALUES = st.one_of(
    st.sampled_from(
        [
            b"pool-a",
            b"\xed\xa0\x80",
            b"\xff\xfe\xfd",
            b"\x1b[2J",
            b"pool $KEY",
            b"NaN",
            b"-1",
            b"Infinity",
            b"1e999",
            b"Wed, 21 Oct 2015 07:28:00 GMT",
            b"Sat, 99 Foo 99999 99:99:99 GMT",
            b"",
            b"x" * 4000,
        ]
    ),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
_HEADER_NAMES = st.sampled_from(
    [b"x-served-by", b"x-backend", b"server", b"retry-after", b"content-type", b"x-other"]
)
_STATUS = st.one_of(
    *[st.just(200)] * 6,
    st.sampled_from([201, 204, 299, 301, 304, 400, 401, 404, 418, 429, 500, 502, 503, 529, 599]),
)


@st.composite
def hostile_reply(draw: st.DrawFn, flavour: str) -> Reply:
    """One reply: mostly a flavour-shaped body, sometimes any JSON, bytes, or a broken one."""
    kind = draw(st.sampled_from(["shaped"] * 6 + ["other-flavour", "any", "bytes", "cut"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        if kind == "any":
            value = draw(any_json)
        else:
            other = draw(st.sampled_from([f for f in FLAVOURS if f != flavour]))
            value = draw(shaped_body(flavour if kind != "other-flavour" else other))
        body = encode(value, ascii_only=draw(st.booleans()))
        if kind == "cut":
            body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    headers = draw(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=3))
    return Reply(
        status=draw(_STATUS),
        body=body,
        headers=((b"content-type", b"application/json"), *headers),
        framing=draw(st.sampled_from(["length"] * 5 + ["close", "chunked", "truncated"])),
    )


@dataclass(frozen=True)
class EndpointPlan:
    """One hostile endpoint of a round: its flavour and the replies it gives, in turn."""

    flavour: str
    replies: tuple[Reply, ...]


@st.composite
def endpoint_plan(draw: st.DrawFn) -> EndpointPlan:
    flavour = draw(st.sampled_from(FLAVOURS))
    replies = draw(st.lists(hostile_reply(flavour), min_size=REPLIES, max_size=REPLIES))
    return EndpointPlan(flavour, tuple(replies))


#: Rounds of 2-3 hostile endpoints, each giving `REPLIES` generated replies (one per request of
#: the fuzz suite): many replies per round, since a round's fixed costs dominate.
round_plans = st.lists(endpoint_plan(), min_size=2, max_size=3)
