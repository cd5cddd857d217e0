"""The incident replay benchmark: `python -m benchmarks.replay [--update-readme]`.

Replays the postmortem's timeline on the simulated fleet (see `config/replay/postmortem.yaml`)
and prints the results table: per fault the detection delay in simulated time and in probes,
next to the theoretical minimum (the oracle test that knows the post-change rate, at the same
threshold), the cohort and change it was attributed to, whether it resolved after rollback;
false alerts on healthy cohorts; request- vs session-level impact at the front door. With
`--update-readme` the Markdown table replaces the one between the README's replay markers.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from rich.console import Console

from canary.replay import analyse, load_scenario, run_scenario
from canary.replay.render import render_markdown, render_report
from canary.store import open_store

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- replay:begin -->", "<!-- replay:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="postmortem")
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()

    console = Console()
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


if __name__ == "__main__":
    main()
