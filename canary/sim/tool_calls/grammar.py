"""Guided decoding for tool calls: the schema subset, its grammars, and the token mask.

See `canary.sim.tool_calls` for how the server uses them and which schemas are supported.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import torch

    from canary.sim.weights import ModelStore

#: Longest string value written when the schema sets no `maxLength`.
DEFAULT_MAX_STRING = 24
#: Longest integer or number written (sign, digits and point).
MAX_NUMBER_CHARS = 9
_IGNORED = frozenset({"description", "title", "default", "examples", "$comment"})
_PLAIN_NAME = re.compile(r"^[ !#-\[\]-~]+$")  # printable ASCII without '"' and '\'


class SchemaUnsupported(ValueError):
    """A `parameters` schema outside the subset the simulator can decode into."""


@dataclass(frozen=True, slots=True)
class _Prop:
    key: str
    """The property's JSON key with its colon, e.g. ``"city":``."""
    kind: Literal["string", "integer", "number", "literal"]
    choices: tuple[str, ...] = ()
    """The JSON texts allowed for a `literal` (enum, const, boolean)."""
    min_len: int = 0
    max_len: int = DEFAULT_MAX_STRING

    @property
    def max_value_chars(self) -> int:
        if self.kind == "string":
            return self.max_len + 2
        if self.kind == "literal":
            return max(len(c) for c in self.choices)
        return MAX_NUMBER_CHARS


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    """A compiled `parameters` schema: its properties in order, and which are required."""

    props: tuple[_Prop, ...]
    required: frozenset[int]

    @property
    def max_chars(self) -> int:
        """The longest arguments text the grammar allows: a bound on the tokens it takes."""
        return 2 + sum(len(p.key) + p.max_value_chars + 1 for p in self.props)


def compile_schema(parameters: Any) -> ObjectSchema:
    """Compile a tool's `parameters` into the decoding subset, or raise `SchemaUnsupported`."""
    if not isinstance(parameters, dict):
        raise SchemaUnsupported("parameters must be a JSON Schema object")
    _check_keys(parameters, {"type", "properties", "required", "additionalProperties"}, "")
    if parameters.get("type", "object") != "object":
        raise SchemaUnsupported("parameters: only type 'object' is supported")
    if parameters.get("additionalProperties", False) not in (False,):
        raise SchemaUnsupported("parameters.additionalProperties: only false is supported")
    properties = parameters.get("properties", {})
    if not isinstance(properties, dict):
        raise SchemaUnsupported("parameters.properties must be an object")
    names = list(properties)
    props = tuple(_compile_prop(name, properties[name]) for name in names)
    required = parameters.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise SchemaUnsupported("parameters.required must be a list of property names")
    missing = [r for r in required if r not in properties]
    if missing:
        raise SchemaUnsupported(f"parameters.required names {missing[0]!r}, not a property")
    return ObjectSchema(props, frozenset(names.index(r) for r in required))


def _check_keys(schema: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in schema:
        if key not in allowed and key not in _IGNORED:
            raise SchemaUnsupported(
                f"parameters{where}: keyword {key!r} is not supported by the simulator"
            )


def _compile_prop(name: Any, schema: Any) -> _Prop:
    where = f".properties.{name}"
    if not isinstance(name, str) or not _PLAIN_NAME.match(name):
        raise SchemaUnsupported(f"parameters{where}: use a printable ASCII name without quotes")
    if not isinstance(schema, dict):
        raise SchemaUnsupported(f"parameters{where} must be a schema object")
    key = json.dumps(name) + ":"
    if "enum" in schema or "const" in schema:
        _check_keys(schema, {"enum", "const", "type"}, where)
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(values, list) or not values:
            raise SchemaUnsupported(f"parameters{where}.enum must be a non-empty list")
        choices = []
        for value in values:
            if isinstance(value, dict | list) or (
                isinstance(value, str) and not _PLAIN_NAME.match(value)
            ):
                raise SchemaUnsupported(f"parameters{where}.enum: {value!r} is not supported")
            choices.append(json.dumps(value))
        return _Prop(key, "literal", tuple(dict.fromkeys(choices)))
    kind = schema.get("type")
    if kind == "boolean":
        _check_keys(schema, {"type"}, where)
        return _Prop(key, "literal", ("true", "false"))
    if kind in ("integer", "number"):
        _check_keys(schema, {"type"}, where)
        return _Prop(key, kind)
    if kind == "string":
        _check_keys(schema, {"type", "minLength", "maxLength"}, where)
        low, high = schema.get("minLength", 0), schema.get("maxLength", DEFAULT_MAX_STRING)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise SchemaUnsupported(f"parameters{where}: minLength/maxLength must be integers")
        if not 0 <= low <= high <= 256:
            raise SchemaUnsupported(f"parameters{where}: need 0 <= minLength <= maxLength <= 256")
        return _Prop(key, "string", min_len=low, max_len=high)
    raise SchemaUnsupported(
        f"parameters{where}: type {kind!r} is not supported (string, integer, number, boolean, "
        "enum)"
    )


# -- grammars ----------------------------------------------------------------------------------

#: A grammar state: (phase, used properties as a bit mask, property, typed text, string length).
State = tuple[int, int, int, str, int]
_OPEN, _FIRST, _NEXT, _KEY, _VALUE, _STR, _NUM, _LIT, _AFTER, _DONE = range(10)
_INT_PREFIX = re.compile(r"-?(?:0|[1-9][0-9]*)?")
_INT_FULL = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUM_PREFIX = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)?")
_NUM_FULL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


class Grammar(Protocol):
    """What `Guide` needs of a grammar: a start state, a step per character, an end test."""

    start: State

    def step(self, state: State, ch: str) -> State | None: ...

    def can_end(self, state: State) -> bool: ...

    def string_room(self, state: State) -> int | None:
        """Characters a string in progress may still take, or None outside a string."""
        ...


class ObjectGrammar:
    """Compact JSON objects matching an `ObjectSchema`, one property at most once."""

    def __init__(self, schema: ObjectSchema) -> None:
        self.schema = schema
        self.start: State = (_OPEN, 0, -1, "", 0)
        self._all = (1 << len(schema.props)) - 1
        self._required = sum(1 << i for i in schema.required)

    def can_end(self, state: State) -> bool:
        return state[0] == _DONE

    def string_room(self, state: State) -> int | None:
        if state[0] != _STR:
            return None
        return self.schema.props[state[2]].max_len - state[4]

    def step(self, state: State, ch: str) -> State | None:
        phase, used, index, buf, n = state
        if phase == _OPEN:
            return (_FIRST, 0, -1, "", 0) if ch == "{" else None
        if phase in (_FIRST, _NEXT):
            if ch == '"':
                return self._key(used, '"')
            if ch == "}" and phase == _FIRST and used & self._required == self._required:
                return (_DONE, used, -1, "", 0)
            return None
        if phase == _KEY:
            return self._key(used, buf + ch)
        if phase == _AFTER:
            return self._close(used, ch)
        if phase == _DONE:
            return None
        prop = self.schema.props[index]
        if phase == _STR:
            if ch == '"':
                return (_AFTER, used, -1, "", 0) if n >= prop.min_len else None
            if ch == "\\" or ch < " " or n >= prop.max_len:
                return None
            return (_STR, used, index, "", n + 1)
        if phase == _VALUE and prop.kind == "string":
            return (_STR, used, index, "", 0) if ch == '"' else None
        if prop.kind == "literal":
            typed = buf + ch
            if any(c.startswith(typed) for c in prop.choices):
                return (_LIT, used, index, typed, 0)
            return self._close(used, ch) if buf in prop.choices else None
        return self._number(state, prop, ch)

    def _number(self, state: State, prop: _Prop, ch: str) -> State | None:
        _, used, index, buf, _ = state
        prefix, full = (
            (_INT_PREFIX, _INT_FULL) if prop.kind == "integer" else (_NUM_PREFIX, _NUM_FULL)
        )
        typed = buf + ch
        # '-' and '.' need room for a digit after them, so the value can always be finished.
        room = len(typed) < MAX_NUMBER_CHARS or typed[-1].isdigit()
        if len(typed) <= MAX_NUMBER_CHARS and room and prefix.fullmatch(typed):
            return (_NUM, used, index, typed, 0)
        return self._close(used, ch) if full.fullmatch(buf) else None

    def _key(self, used: int, typed: str) -> State | None:
        for i, prop in enumerate(self.schema.props):
            if used & (1 << i) or not prop.key.startswith(typed):
                continue
            if typed == prop.key:
                return (_VALUE, used | (1 << i), i, "", 0)
            return (_KEY, used, -1, typed, 0)
        return None

    def _close(self, used: int, ch: str) -> State | None:
        if ch == "," and used != self._all:
            return (_NEXT, used, -1, "", 0)
        if ch == "}" and used & self._required == self._required:
            return (_DONE, used, -1, "", 0)
        return None


class ChoiceGrammar:
    """Exactly one of a few literal texts (a function name as a JSON string)."""

    def __init__(self, choices: Sequence[str]) -> None:
        self.choices = tuple(choices)
        self.start: State = (_LIT, 0, -1, "", 0)

    @property
    def max_chars(self) -> int:
        return max(len(c) for c in self.choices)

    def step(self, state: State, ch: str) -> State | None:
        typed = state[3] + ch
        if any(c.startswith(typed) for c in self.choices):
            return (_LIT, 0, -1, typed, 0)
        return None

    def can_end(self, state: State) -> bool:
        return state[3] in self.choices

    def string_room(self, state: State) -> int | None:
        return None


def walk(grammar: Grammar, state: State | None, text: str) -> State | None:
    """The state after `text`, or None where it leaves the grammar."""
    for ch in text:
        if state is None:
            return None
        state = grammar.step(state, ch)
    return state


# -- the mask ----------------------------------------------------------------------------------


class TokenTable:
    """The vocabulary as guided decoding sees it, built once per model.

    Special tokens and tokens that end inside a character (text with U+FFFD) are never
    allowed: a call's text is the concatenation of its tokens' texts, so it must be whole.
    """

    def __init__(self, strings: Sequence[str], special_ids: Iterable[int], eos: int | None) -> None:
        import torch

        special = set(special_ids)
        self.strings = list(strings)
        self.eos = eos
        usable = [bool(s) and "\ufffd" not in s and i not in special for i, s in enumerate(strings)]
        self.by_first: dict[str, list[int]] = {}
        for i, s in enumerate(self.strings):
            if usable[i]:
                self.by_first.setdefault(s[0], []).append(i)
        plain = [
            ok and not any(c in '"\\' or c < " " for c in s)
            for ok, s in zip(usable, self.strings, strict=True)
        ]
        self.plain = torch.tensor(plain, dtype=torch.bool)
        self.lengths = torch.tensor([len(s) for s in self.strings], dtype=torch.long)
        self.quoted = [i for i, s in enumerate(self.strings) if usable[i] and '"' in s]


_TABLES: weakref.WeakKeyDictionary[ModelStore, TokenTable] = weakref.WeakKeyDictionary()


def token_table(store: ModelStore) -> TokenTable:
    """The `TokenTable` of the store's model (built on first use)."""
    table = _TABLES.get(store)
    if table is None:
        tokenizer = store.tokenizer
        eos = tokenizer.eos_token_id
        table = TokenTable(
            store.token_strings(), tokenizer.all_special_ids, int(eos) if eos is not None else None
        )
        _TABLES[store] = table
    return table


class Guide:
    """A `GenRequest.logits_processor` that keeps the generated text inside `grammar`."""

    def __init__(self, grammar: Grammar, table: TokenTable) -> None:
        self.grammar = grammar
        self.table = table
        self.state: State | None = grammar.start
        self._seen = 0
        self._memo: dict[State | None, torch.Tensor] = {}

    def __call__(self, ids: list[int], row: torch.Tensor) -> None:
        for token in ids[self._seen :]:
            # A token the mask did not allow (a sampler fault can pick one) breaks the text;
            # from then on only end-of-sequence is allowed, and the broken text is returned.
            self.state = walk(self.grammar, self.state, self.table.strings[token])
        self._seen = len(ids)
        allowed = self._memo.get(self.state)
        if allowed is None:
            allowed = self._memo[self.state] = self._allowed(self.state)
        row.masked_fill_(~allowed, float("-inf"))

    def _allowed(self, state: State | None) -> torch.Tensor:
        import torch

        table, grammar = self.table, self.grammar
        mask = torch.zeros(len(table.strings), dtype=torch.bool)
        if state is not None:
            room = grammar.string_room(state)
            if room is not None:
                mask |= table.plain & (table.lengths <= room)
                for i in table.quoted:
                    mask[i] = walk(grammar, state, table.strings[i]) is not None
            else:
                for first, ids in table.by_first.items():
                    after = grammar.step(state, first)
                    if after is None:
                        continue
                    for i in ids:
                        if walk(grammar, after, table.strings[i][1:]) is not None:
                            mask[i] = True
        if table.eos is not None and (state is None or grammar.can_end(state) or not mask.any()):
            mask[table.eos] = True
        return mask
