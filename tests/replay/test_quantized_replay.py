"""A silently quantized build, replayed: a deploy swaps the GPU pool's weights for a 4-bit
copy of the same model (dequantized at load, served over HTTP). `first_divergence` cannot see
it; the `model_equality` detector can: the pool's `model_mismatch` monitor fires, attributed
to that deploy, the honest bf16 pool beside it stays quiet, and `canary report` shows the pool
as serving a different model, in the terminal and in the HTML."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from rich.console import Console

from canary.records import ResultFilter
from canary.replay import analyse, load_scenario, run_scenario
from canary.replay.analysis import ReplayReport
from canary.replay.render import render_markdown
from canary.replay.runner import ReplayRun
from canary.reports import build_report
from canary.reports.html import render_html
from canary.reports.terminal import render_terminal
from canary.store import Store, open_store

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Replayed:
    store: Store
    run: ReplayRun
    report: ReplayReport


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    url = f"sqlite:///{tmp_path_factory.mktemp('quantized') / 'canary.db'}"
    store = open_store(url)
    run = run_scenario(store, load_scenario("quantized"), progress=lambda _: None)
    yield Replayed(store, run, analyse(store, run))
    store.close()


def test_the_quantized_pool_alerts_attributed_to_its_deploy(replayed: Replayed) -> None:
    table = render_markdown(replayed.report)
    (fault,) = replayed.report.faults
    assert fault.detected and fault.metric == "model_mismatch", table
    assert "pool=gpu-fp32" in fault.cohort, table
    assert fault.attributed_to == "gpu-deploy-int4", table
    assert fault.delay_ticks == 1, table  # every probe of the 4-bit build is flagged
    assert fault.resolved_after_rollback, table
    assert replayed.report.false_alerts == [] and replayed.report.misattributed == [], table


def test_the_report_says_which_pool_serves_another_model(replayed: Replayed) -> None:
    applied = {a.step.change: a.at for a in replayed.run.applied}
    deployed, rolled_back = applied["gpu-deploy-int4"], applied["gpu-rollback-int4"]
    window = ResultFilter(since=deployed, until=rolled_back)
    report = build_report(replayed.store, window, baseline="replay-baseline")
    served = {row.served: row for row in report.served}
    assert served["pool=gpu-fp32"].verdict == "different", served
    assert served["pool=gpu-fp32"].mismatched == served["pool=gpu-fp32"].judged > 0
    assert served["pool=tpu-bf16"].verdict == "same", served
    assert served["pool=tpu-bf16"].mismatched == 0
    assert served["pool=tpu-bf16"].kl_upper < served["pool=tpu-bf16"].margin
    regressed = {(c.cohort, c.metric) for c in report.regressed}
    assert any(m == "model_mismatch" and "gpu-fp32" in c for c, m in regressed), regressed

    console = Console(width=100, record=True)
    render_terminal(report, console)
    text = console.export_text()
    assert "served model" in text and "different (p" in text and "same (p" in text
    html = render_html(report)
    assert "Served model" in html and "different (p" in html
    assert report.to_dict()["served"][0]["served"] == "pool=gpu-fp32"


def test_identity_decides_from_the_stored_scores(replayed: Replayed) -> None:
    """`canary identity --stored` sends nothing: the daemon's own probes already measured it."""
    from canary.identity import check_stored
    from tests.support.cli import invoke

    deployed = {a.step.change: a.at for a in replayed.run.applied}["gpu-deploy-int4"]
    quantized = check_stored(replayed.store, "gpu-fp32", deployed)
    assert quantized.verdict == "different" and quantized.run_id is None
    assert quantized.evidence and all(e.score > 1e-3 for e in quantized.evidence)
    honest = check_stored(replayed.store, "tpu-bf16", deployed)
    assert honest.verdict == "same", honest.to_dict()

    url = str(replayed.store.engine.url)
    since = deployed.isoformat()
    code, out = invoke(
        "identity", "--sim", "--endpoint", "gpu-fp32", "--stored", since, "--db", url
    )
    assert code == 1 and "identity: different" in out, out
    code, out = invoke(
        "identity", "--sim", "--endpoint", "tpu-bf16", "--stored", since, "--db", url
    )
    assert code == 0 and "identity: same" in out, out
    # Too little stored data is never "same".
    later = (replayed.run.tick_times[-1] + timedelta(minutes=1)).isoformat()
    code, out = invoke("identity", "--sim", "-e", "tpu-bf16", "--stored", later, "--db", url)
    assert code == 2 and "needed" in out, out
