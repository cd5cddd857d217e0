"""How fast each detector scores short outputs.

Run from the repo root: ``python -m benchmarks.detectors_speed [N]``.

Prints one row per detector (code once per language): results scored per second over N
synthetic outputs (default 100,000; SQL, whose parser is far slower, gets N/10). About 3 in 10
prose outputs hold non-ASCII punctuation and 1 in 50 outputs is corrupted, so the slow paths
(full Unicode scans, evidence building) are exercised too.

A second table times single 1 MB outputs against their speed goals (an endpoint that runs away
must not stall scoring). The tests only check that these scale linearly, so a busy machine
cannot fail them; the goals are kept, and judged, here.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

from canary.detectors import ScoringInput, build_detector, score_all
from canary.probes import Probe

WORDS = [
    "the",
    "model",
    "returns",
    "a",
    "short",
    "answer",
    "about",
    "rivers",
    "cities",
    "numbers",
    "and",
    "code",
    "while",
    "the",
    "server",
    "keeps",
    "every",
    "request",
    "in",
    "order",
    "so",
    "that",
    "each",
    "reply",
    "is",
    "checked",
    "quickly",
    "by",
    "canary",
]
CORRUPTIONS = ("สวัสดี", "世界", "pаss", "cafÃ©", "\ufffd")


def prose(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(20, 60))]
    if rng.random() < 0.3:  # typical non-ASCII punctuation: takes the slower, full-Unicode paths
        words.insert(rng.randrange(len(words)), rng.choice(("—", "it’s", "“ok”", "café")))
    if rng.random() < 0.02:
        words.insert(rng.randrange(len(words)), rng.choice(CORRUPTIONS))
    return " ".join(words).capitalize() + "."


def python_code(rng: random.Random) -> str:
    name = rng.choice(WORDS)
    op = "+*" if rng.random() < 0.02 else "+"
    return f"Here it is:\n```python\ndef {name}(a, b):\n    total = a {op} b\n    return total\n```"


def json_code(rng: random.Random) -> str:
    extra = "," if rng.random() < 0.02 else ""
    return f'{{"name": "{rng.choice(WORDS)}", "n": {rng.randint(0, 999)}, "tags": ["a"{extra}]}}'


def sql_code(rng: random.Random) -> str:
    column = rng.choice(WORDS)
    where = "WHERE AND" if rng.random() < 0.02 else f"WHERE {column} > {rng.randint(0, 99)}"
    return f"```sql\nSELECT id, {column} FROM t {where} ORDER BY id;\n```"


def chat(kind: str, **expect: object) -> Probe:
    return Probe(id="b", kind=kind, messages=[{"role": "user", "content": "q"}], expect=expect)


def bench(label: str, n: int, score: Callable[[ScoringInput], object], inputs: list[ScoringInput]):
    start = time.perf_counter()
    for inp in inputs[:n]:
        score(inp)
    elapsed = time.perf_counter() - start
    print(f"{label:<16} {n:>9,} {n / elapsed:>12,.0f} {elapsed:>9.2f}")


def one_megabyte_cases() -> list[tuple[str, float, Callable[[], object]]]:
    """(label, goal in seconds, one scoring call) for the 1 MB outputs the tests use."""
    code, entropy, script = (build_detector(name) for name in ("code", "entropy", "script"))
    module = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30_000))
    rng = random.Random(2)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "zeta"]
    noise = " ".join(rng.choice(words) for _ in range(180_000))
    english = ("All quiet on the western front. " * 32_000) + "สวัสดี"

    def code_pair() -> None:
        probe = chat("code", language="python")
        code.score(ScoringInput(probe, f"```python\n{module}```", finish_reason="stop"))
        broken = f"```python\n{module}def broken(:\n```"
        code.score(ScoringInput(probe, broken, finish_reason="stop"))

    return [
        ("code[python] x2", 5.0, code_pair),
        ("entropy", 3.0, lambda: entropy.score(ScoringInput(chat("entropy"), noise))),
        ("script", 2.0, lambda: script.score(ScoringInput(chat("script"), english))),
    ]


def bench_one_megabyte() -> None:
    print(f"\n{'1 MB output':<16} {'seconds':>9} {'goal s':>8} {'met':>5}")
    for label, goal, call in one_megabyte_cases():
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        print(f"{label:<16} {elapsed:>9.2f} {goal:>8.1f} {'yes' if elapsed < goal else 'NO':>5}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(0)
    texts = [prose(rng) for _ in range(n)]
    cases = {
        "script": [ScoringInput(chat("script"), t) for t in texts],
        "entropy": [ScoringInput(chat("entropy"), t) for t in texts],
        "fixed": [
            ScoringInput(chat("fixed", contains=["river"], regex=r"\bcode\b"), t) for t in texts
        ],
        "code[python]": [
            ScoringInput(chat("code", language="python"), python_code(rng)) for _ in range(n)
        ],
        "code[json]": [
            ScoringInput(chat("code", language="json"), json_code(rng)) for _ in range(n)
        ],
        "code[sql]": [
            ScoringInput(chat("code", language="sql"), sql_code(rng)) for _ in range(n // 10)
        ],
    }
    print(f"{'detector':<16} {'outputs':>9} {'results/s':>12} {'seconds':>9}")
    for label, inputs in cases.items():
        detector = build_detector(label.split("[")[0])
        bench(label, len(inputs), detector.score, inputs)
    bench("score_all", n, score_all, cases["script"])
    bench_one_megabyte()


if __name__ == "__main__":
    main()
