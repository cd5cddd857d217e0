"""The incident replay benchmark: `python -m benchmarks.replay [--update-readme]`.

Replays the postmortem's timeline on the simulated fleet (see `config/replay/postmortem.yaml`)
and prints the results table: per fault the detection delay in simulated time and in probes,
next to the theoretical minimum (the oracle test that knows the post-change rate, at the same
threshold), the cohort and change it was attributed to, whether it resolved after rollback;
false alerts on healthy cohorts; request- vs session-level impact at the front door. With
`--update-readme` the Markdown table replaces the one between the README's replay markers.
With `--adaptive-compare` the scenario is replayed twice, without and with adaptive probing
(`canary.daemon.adaptive`), and the detection delays are printed side by side; try
`--scenario small-fault --adaptive-compare`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from rich.console import Console

from canary.replay import analyse, load_scenario, run_scenario
from canary.replay.analysis import compare_delays
from canary.replay.render import render_delays, render_markdown, render_report
from canary.store import open_store

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- replay:begin -->", "<!-- replay:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="postmortem")
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument(
        "--adaptive-compare",
        action="store_true",
        help="replay twice, without and with adaptive probing, and compare detection delays",
    )
    args = parser.parse_args()

    console = Console()
    if args.adaptive_compare:
        compare_adaptive(console, args.scenario)
        return
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp(prefix='canary-replay-')) / 'replay.db'}"
    store = open_store(url)
    began = time.perf_counter()
    scenario = load_scenario(args.scenario)
    run = run_scenario(
        store,
        scenario,
        progress=lambda m: console.print(f"[dim]{time.perf_counter() - began:6.0f}s[/] {m}"),
    )
    report = analyse(store, run)
    render_report(report, console)
    if args.update_readme:
        text = README.read_text(encoding="utf-8")
        block = f"{BEGIN}\n{render_markdown(report)}\n{END}"
        updated, count = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), block, text, flags=re.S)
        if count != 1:
            raise SystemExit(f"README.md needs exactly one {BEGIN} … {END} block")
        README.write_text(updated, encoding="utf-8")
        console.print("README.md updated")


def compare_adaptive(console: Console, name: str) -> None:
    """The scenario without and with adaptive probing, each into a fresh database."""
    began = time.perf_counter()
    scenario = load_scenario(name)
    reports = []
    for enabled in (False, True):
        adaptive = scenario.adaptive.model_copy(update={"enabled": enabled})
        variant = scenario.model_copy(update={"adaptive": adaptive})
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='canary-replay-')) / 'replay.db'}"
        store = open_store(url)
        run = run_scenario(
            store,
            variant,
            progress=lambda m: console.print(f"[dim]{time.perf_counter() - began:6.0f}s[/] {m}"),
        )
        reports.append(analyse(store, run))
        render_report(reports[-1], console)
    rows = compare_delays(reports[0], reports[1])
    console.print(render_delays(rows), markup=False)
    for r in rows:
        print(
            f"adaptive fault={r.fault} delay_ticks={r.ticks}->{r.adaptive_ticks} "
            f"delay_sessions={r.sessions}->{r.adaptive_sessions}"
        )


if __name__ == "__main__":
    main()
