"""`check_identity`: is this endpoint serving the trusted model? One value back, for the CLI,
the benchmark and the tests alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from canary.identity._analyze import Evidence
from canary.identity._verdict import EXIT_CODES, TestOutcome, Verdict, combine
from canary.stats.equivalence import DEFAULT_KL_MARGIN

if TYPE_CHECKING:
    from canary.config import FleetConfig
    from canary.reference import ReferenceModel
    from canary.store import Store


@dataclass(frozen=True)
class IdentityReport:
    """The verdict, the tests that made it, and where the sides differ most."""

    endpoint: str
    against: str
    verdict: Verdict
    level: float
    """The level each test's p-value was held to (α over the number of tests)."""
    tests: list[TestOutcome]
    evidence: list[Evidence] = field(default_factory=list)
    run_id: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "against": self.against,
            "verdict": self.verdict,
            "level": self.level,
            "tests": [t.to_dict() for t in self.tests],
            "evidence": [asdict(e) for e in self.evidence],
            "run_id": self.run_id,
            "notes": self.notes,
        }


def check_identity(
    store: Store,
    fleet: FleetConfig,
    endpoint: str,
    *,
    against: str = "reference",
    model: ReferenceModel | None = None,
    budget: int = 40,
    samples: int = 10,
    alpha: float = 0.05,
    kl_margin: float = DEFAULT_KL_MARGIN,
    border: list[tuple[str, str]] | None = None,
    seed: int = 0,
) -> IdentityReport:
    """Send the identity suite to `endpoint` (and to `endpoint:Y`), store it, and decide.

    `against` is `reference` (the local model, `model`), `endpoint:NAME` (sent the same suite
    in the same round) or `baseline:NAME` / `run:ID` (stored identity results). `budget` is
    the number of prompts; `samples` the completions per prompt for MMD and RUT; `border` the
    (prompt, reference choice) border inputs, none to skip that test.
    """
    from canary.errors import ConfigError
    from canary.identity import _analyze as analyze
    from canary.identity._collect import Plan, by_probe, identity_suite, send, stored_side
    from canary.identity._prompts import identity_prompts

    target = fleet.endpoint(endpoint)
    mode, _, name = against.partition(":")
    if against != "reference" and mode not in ("endpoint", "baseline", "run"):
        raise ConfigError(
            f"--against {against!r}: use reference, baseline:NAME, endpoint:NAME or run:ID"
        )
    if against == "reference" and model is None:
        raise ConfigError(
            "--against reference needs a reference model: set `reference:` in the fleet file"
        )
    notes: list[str] = []
    chat = "chat" in target.flavour
    if border and chat:
        notes.append("border inputs skipped: the endpoint applies a chat template")
    plan = Plan(
        prompts=identity_prompts(budget),
        samples=samples,
        tracking=against != "reference",
        border=list(border or []) if not chat else [],
    )
    suite = identity_suite(plan)
    others = [fleet.endpoint(name)] if mode == "endpoint" else []
    run_id = send(store, fleet, suite, [target, *others])
    results = store.results_for_run(run_id)
    mine = by_probe(results, endpoint)
    if mode == "endpoint":
        trusted = by_probe(results, name)
    elif mode in ("baseline", "run"):
        stored, owner = stored_side(store, against, endpoint)
        trusted = by_probe(stored, owner)
        if not trusted:
            raise ConfigError(f"--against {against}: it holds no stored identity results")
    else:
        trusted = {}
    prompts = {p.id: _rendered(p, target, fleet, model) for p in suite.probes}
    mmd_ids = sorted(p.id for p in suite.probes if p.id.startswith("mmd-"))

    ran: list[tuple[TestOutcome | None, list[Evidence]]] = []
    if against == "reference" and model is not None:
        ran.append(
            analyze.kl_against_reference(mine, model, prompts, margin=kl_margin, alpha=alpha)
        )
        ref_texts = _reference_texts(model, [prompts[p] for p in mmd_ids], samples, seed)
        ran.append(analyze.mmd(mine, ref_texts, mmd_ids, seed))
        ran.append((analyze.rut(mine, model, prompts, ref_texts, mmd_ids, seed), []))
        choices = {
            p.id: str(p.expect["reference_choice"])
            for p in suite.probes
            if p.id.startswith("border-")
        }
        ran.append(analyze.border(mine, choices, alpha=alpha))
    else:
        theirs = [[r.output_text or "" for r in trusted.get(p, [])] for p in mmd_ids]
        ran.append(analyze.kl_between(mine, trusted, margin=kl_margin, alpha=alpha))
        ran.append(analyze.mmd(mine, theirs, mmd_ids, seed))
        ran.append((analyze.tracking(mine, trusted, seed), []))
    outcomes = [o for o, _ in ran if o is not None]
    evidence = [e for _, ev in ran for e in ev]
    if not any(o.name == "kl-margin" for o in outcomes):
        notes.append("no top-k logprobs in the answers: KL tests not run")
    verdict, level = combine(outcomes, alpha)
    return IdentityReport(endpoint, against, verdict, level, outcomes, evidence, run_id, notes)


def _rendered(probe: Any, target: Any, fleet: FleetConfig, model: ReferenceModel | None) -> str:
    if model is None:
        return str(probe.as_prompt())
    spec = target.chat_template
    if spec is None and fleet.reference is not None:
        spec = fleet.reference.chat_template
    return model.render(probe, target.flavour, spec)


def _reference_texts(
    model: ReferenceModel, prompts: list[str], samples: int, seed: int
) -> list[list[str]]:
    from canary.identity._collect import SAMPLE_TOKENS
    from canary.reference import reference_samples

    return reference_samples(model, prompts, samples, max_tokens=SAMPLE_TOKENS, seed=seed)
