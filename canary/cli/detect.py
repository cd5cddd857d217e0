"""`canary detect`: judge outputs from a file with every applicable detector (triage)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from canary.cli.options import JsonOption, ReferenceOption

if TYPE_CHECKING:
    from collections.abc import Sequence

    from canary.detectors.triage import Verdict
    from canary.reference import ReferenceModel


def detect(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON Lines, one output a row: text, and optionally prompt, kind, expect, "
            "finish_reason, id ('-' reads stdin).",
            show_default=False,
        ),
    ],
    special_token: Annotated[
        list[str] | None,
        typer.Option(
            "--special-token",
            help="A special token of the model's tokenizer to flag when written out "
            "(repeatable), besides the generic shapes.",
        ),
    ] = None,
    reference: ReferenceOption = None,
    json_out: JsonOption = False,
) -> None:
    """Say for each output whether a detector flags it, why, and where in the text.

    With a reference model (--reference, else $CANARY_REFERENCE_MODEL), its tokenizer's special
    tokens are flagged too, and rows with a `prompt` are judged by the reference likelihood.
    Nothing is stored. Exits 0 whether or not outputs are flagged (read `flagged`); a row that
    is not a JSON object with a string `text`, or whose kind or expect no detector can use,
    exits 3 naming its line.
    """
    from canary.detectors.triage import detect_rows, parse_rows

    name = "stdin" if str(file) == "-" else str(file)
    rows = parse_rows(_lines(file, name), name)
    tokens = tuple(special_token or ())
    logprobs = None
    model = _reference_model(reference)
    if model is not None:
        from canary.detectors.special_tokens import tokenizer_special_tokens
        from canary.reference import continuation_logprobs

        tokens = tuple(dict.fromkeys((*tokens, *tokenizer_special_tokens(model.tokenizer))))

        def logprobs(pairs: Sequence[tuple[str, str]]) -> list[list[float | None]]:
            return continuation_logprobs(model, pairs)

    verdicts = detect_rows(rows, tokens, source=name, logprobs=logprobs)
    if json_out:
        _print_json_lines(verdicts)
    else:
        _print_lines(verdicts)


def _reference_model(cli: str | None) -> ReferenceModel | None:
    """The local reference model named by --reference or the environment; None without one."""
    from canary.config.reference import resolve_reference

    judge = resolve_reference(cli)
    if judge is None or judge.model is None:
        return None
    from canary.scoring.reference import shared_reference_model

    return shared_reference_model(judge.model, judge.device, judge.dtype)


def _lines(file: Path, name: str) -> list[str]:
    from canary.errors import ConfigError

    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read ({exc.strerror}); give a readable file") from None
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{name} line {line}: not UTF-8 text; save the file as UTF-8") from None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _print_json_lines(verdicts: list[Verdict]) -> None:
    from canary.sanitize import inert_json, scrub_secrets

    for verdict in verdicts:
        line = json.dumps(_finite(verdict.to_dict()), ensure_ascii=False, allow_nan=False)
        sys.stdout.write(scrub_secrets(inert_json(line)) + "\n")


def _print_lines(verdicts: list[Verdict]) -> None:
    from canary.sanitize import one_line

    flagged = 0
    for verdict in verdicts:
        if not verdict.flagged:
            sys.stdout.write(f"ok       {one_line(verdict.id)}\n")
            continue
        flagged += 1
        sys.stdout.write(f"FLAGGED  {one_line(verdict.id)}\n")
        for reason in verdict.reasons:
            value = "-" if reason.value is None else f"{reason.value:g}"
            where = ""
            if reason.span is not None:
                where = f" at {reason.span['start']}:{reason.span['end']} {reason.span['text']!r}"
            sys.stdout.write(f"  {reason.detector}/{reason.metric}={value}{one_line(where)}\n")
    sys.stdout.write(f"{flagged} of {len(verdicts)} outputs flagged\n")
    broken = [v for v in verdicts if v.broken is True]
    clean = [v for v in verdicts if v.broken is False]
    if broken or clean:  # a labelled corpus: how well the detectors did
        caught = sum(v.flagged for v in broken)
        share = f" ({caught / len(broken):.0%})" if broken else ""
        sys.stdout.write(
            f"rows labelled broken flagged: {caught} of {len(broken)}{share}; "
            f"labelled clean flagged: {sum(v.flagged for v in clean)} of {len(clean)}\n"
        )
