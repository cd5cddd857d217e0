"""The prompts identity checks are asked on: the shipped suites' completion prompts, in a fixed
order, so two runs (or an endpoint and a stored baseline) ask the same questions."""

from __future__ import annotations

from functools import lru_cache

#: Shipped suites whose plain prompts are natural text for the shipped model.
SOURCE_SUITES = ("topk", "entropy", "code", "fixed", "script", "routing", "smoke", "utf8")


@lru_cache(maxsize=1)
def shipped_prompts() -> tuple[str, ...]:
    """Every distinct plain prompt of the source suites, topk's first (its prompts are the
    ones the model continues fluently), then word-prefixes of them to widen the pool."""
    from canary.probes import load_suite

    seen: dict[str, None] = {}
    for name in SOURCE_SUITES:
        for probe in load_suite(name).probes:
            if probe.prompt and probe.prompt.strip():
                seen.setdefault(probe.prompt, None)
    base = list(seen)
    for prompt in base:
        words = prompt.split(" ")
        for cut in range(len(words) - 1, 1, -1):
            seen.setdefault(" ".join(words[:cut]), None)
    return tuple(seen)


def identity_prompts(n: int) -> list[str]:
    """The first `n` prompts of the pool (cycled never: at most the pool's size)."""
    return list(shipped_prompts()[:n])
