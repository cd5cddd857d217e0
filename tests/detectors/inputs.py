"""Helpers to build scoring inputs by hand."""

from __future__ import annotations

from typing import Any

from canary.detectors import ScoringInput
from canary.probes import Probe


def chat_probe(kind: str = "script", **expect: Any) -> Probe:
    return Probe(id="p", kind=kind, messages=[{"role": "user", "content": "Q"}], expect=expect)


def given(
    text: str | None,
    kind: str = "script",
    *,
    prompt: str | None = None,
    finish_reason: str | None = "stop",
    error_kind: str | None = None,
    **expect: Any,
) -> ScoringInput:
    """A successful result of a chat probe (or a completion probe when ``prompt`` is given)."""
    if prompt is None:
        probe = chat_probe(kind, **expect)
    else:
        probe = Probe(id="p", kind=kind, prompt=prompt, expect=expect)
    return ScoringInput(
        probe=probe,
        output_text=text,
        error_kind=error_kind,
        tokens=None,
        finish_reason=finish_reason,
    )
