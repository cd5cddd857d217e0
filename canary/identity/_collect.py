"""The identity suite, sending it through the normal runner, and reading the answers back.

Everything goes through `run_and_judge`, so every request and answer is stored like any other
round (suite `identity`), and a later check or a baseline can be built from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canary.config import EndpointConfig, FleetConfig
    from canary.probes.model import Suite
    from canary.store import Store
    from canary.store.views import StoredResult

IDENTITY_SUITE = "identity"
#: Greedy tokens per KL probe: the issue's server measures use a few hundred positions in all.
KL_TOKENS = 16
#: Sampled tokens per MMD/RUT completion (MET compares completions character by character).
SAMPLE_TOKENS = 12
#: Prompts and repeats of the first-token tracking probes (only against a serving side).
TRACK_PROMPTS = 8
TRACK_REPEATS = 10
TOP_LOGPROBS = 5


@dataclass(frozen=True)
class Plan:
    """What to ask: prompts, samples per prompt, and which kinds of probe."""

    prompts: list[str]
    samples: int = 10
    tracking: bool = False
    border: list[tuple[str, str]] = field(default_factory=list)
    """(prompt, the reference's choice) of each border input."""


def identity_suite(plan: Plan) -> Suite:
    """The probes of `plan` as one suite: `kl-`, `mmd-`, `track-` and `border-` probes."""
    from canary.probes.model import Probe, SamplingParams, Suite

    greedy = SamplingParams(
        temperature=0.0, max_tokens=KL_TOKENS, logprobs=True, top_logprobs=TOP_LOGPROBS
    )
    sampled = SamplingParams(temperature=1.0, max_tokens=SAMPLE_TOKENS)
    first = SamplingParams(temperature=0.0, max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS)
    one = SamplingParams(temperature=0.0, max_tokens=1)
    probes = [
        Probe(id=f"kl-{i:03d}", kind="topk", prompt=p, params=greedy)
        for i, p in enumerate(plan.prompts)
    ]
    probes += [
        Probe(id=f"mmd-{i:03d}", prompt=p, params=sampled, repeat=plan.samples)
        for i, p in enumerate(plan.prompts)
    ]
    if plan.tracking:
        probes += [
            Probe(id=f"track-{i:03d}", prompt=p, params=first, repeat=TRACK_REPEATS)
            for i, p in enumerate(plan.prompts[:TRACK_PROMPTS])
        ]
    probes += [
        Probe(id=f"border-{i:03d}", prompt=p, params=one, expect={"reference_choice": c})
        for i, (p, c) in enumerate(plan.border)
    ]
    return Suite(
        name=IDENTITY_SUITE,
        description="Served-model identity: greedy top-k, samples, first tokens, border inputs.",
        probes=probes,
    )


def send(
    store: Store, fleet: FleetConfig, suite: Suite, endpoints: Sequence[EndpointConfig]
) -> int:
    """Send the suite once to `endpoints` through the runner (stored, not scored): the run id."""
    from canary.pipeline import run_and_judge

    judged = run_and_judge(store, fleet, suite, list(endpoints), score=False, trigger="identity")
    return judged.stored.run_id


def by_probe(results: Sequence[StoredResult], endpoint: str) -> dict[str, list[StoredResult]]:
    """The endpoint's successful answers grouped by probe id, in repeat order."""
    out: dict[str, list[StoredResult]] = {}
    for r in sorted(results, key=lambda r: (r.probe_id, r.repeat_index)):
        if r.endpoint == endpoint and r.error_kind is None and r.output_text is not None:
            out.setdefault(r.probe_id, []).append(r)
    return out


def stored_side(store: Store, selector: str, endpoint: str) -> tuple[list[StoredResult], str]:
    """Stored identity results that `baseline:NAME` or `run:ID` covers, and whose they are:
    `endpoint`'s own when the selection holds them, else the first endpoint it holds."""
    from canary.compare.baselines import load_baseline
    from canary.errors import ConfigError

    text = selector
    if selector.startswith("baseline:"):
        text = load_baseline(store, selector.removeprefix("baseline:")).selector
    # A baseline keeps `ResultFilter.describe()`: "runs 3,4" when it was captured from runs.
    words = text.replace("run:", "runs ", 1).split()
    if len(words) != 2 or words[0] != "runs" or not all(w.isdigit() for w in words[1].split(",")):
        raise ConfigError(
            f"--against {selector}: {text!r} names no runs; identity compares against a "
            "baseline captured from run:ID (of an identity round) or run:ID itself"
        )
    found = [
        r
        for run in words[1].split(",")
        for r in store.results_for_run(int(run))
        if r.suite == IDENTITY_SUITE
    ]
    names = [r.endpoint for r in found]
    return found, endpoint if endpoint in names else (names[0] if names else endpoint)
