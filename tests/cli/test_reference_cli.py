"""`--reference` on run, score, compare and daemon; no reference configured: the checks are not
made, and run, score and compare say so and how to configure one. The simulated fleet over real
HTTP, reached through a fleet file the way a user writes one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from canary.config.reference import REFERENCE_ENV
from canary.errors import ExitCode
from tests.support.cli import invoke, write_suite

GREEDY = {"temperature": 0.0, "max_tokens": 6, "logprobs": True, "top_logprobs": 5}
ROWS = [
    {"id": "prose", "kind": "topk", "prompt": "Return the number of", "params": GREEDY},
    {"id": "code", "kind": "topk", "prompt": "def add(a, b):\n    return", "params": GREEDY},
]
NOT_AVAILABLE = "not available (no reference)"


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    from canary.sim.embedded import default_sim_fleet_path
    from canary.sim.fleetconfig import load_sim_fleet
    from canary.sim.server import running_fleet

    with running_fleet(load_sim_fleet(default_sim_fleet_path()), port=0) as running:
        yield running.base_url


def _fleet(tmp_path: Path, sim_url: str, **extra: object) -> Path:
    path = tmp_path / "fleet.yaml"
    endpoint = {
        "name": "gpu-fp32",
        "base_url": f"{sim_url}/pools/gpu-fp32/v1",
        "flavour": "openai-completions",
        "model": "canary-tiny",
    }
    path.write_text(yaml.safe_dump({"version": 1, "endpoints": [endpoint], **extra}))
    return path


def _one_line(output: str) -> str:
    return " ".join(output.split())


def test_no_reference_says_so_in_run_score_and_compare(tmp_path: Path, sim_url: str) -> None:
    fleet = _fleet(tmp_path, sim_url)
    suite = write_suite(tmp_path / "ref.jsonl", ROWS)
    env = {REFERENCE_ENV: ""}
    code, out = invoke("run", "--fleet", str(fleet), "--suite", str(suite), env=env)
    assert code == 0, out
    assert NOT_AVAILABLE in _one_line(out) and "--reference DIR" in _one_line(out)
    assert "top1_agreement" not in out

    code, out = invoke("compare", "--before", "run:1", "--after", "run:1", env=env)
    assert NOT_AVAILABLE in _one_line(out), out
    code, out = invoke("report", "--json", env=env)
    assert code == 0 and NOT_AVAILABLE in _one_line(out), out

    # The shipped model named on the command line judges the stored results.
    code, out = invoke("score", "--run", "1", "--fleet", str(fleet), "--reference", "canary:tiny")
    assert code == 0, out
    assert "top1_agreement" in out and NOT_AVAILABLE not in _one_line(out)
    code, out = invoke("compare", "--before", "run:1", "--after", "run:1", env=env)
    assert NOT_AVAILABLE not in _one_line(out), out


def test_fleet_file_reference_and_the_environment(tmp_path: Path, sim_url: str) -> None:
    suite = write_suite(tmp_path / "ref.jsonl", ROWS)
    fleet = _fleet(tmp_path, sim_url, reference={"model": "canary:tiny"})
    code, out = invoke("run", "--fleet", str(fleet), "--suite", str(suite), env={REFERENCE_ENV: ""})
    assert code == 0 and "top1_agreement" in out and NOT_AVAILABLE not in _one_line(out), out

    bare = _fleet(tmp_path, sim_url)
    code, out = invoke(
        "run", "--fleet", str(bare), "--suite", str(suite), env={REFERENCE_ENV: "canary:tiny"}
    )
    assert code == 0 and "top1_agreement" in out, out


@pytest.mark.parametrize("command", ["run", "score", "compare", "daemon"])
def test_a_bad_reference_path_is_one_line_and_exit_3(
    tmp_path: Path, sim_url: str, command: str
) -> None:
    fleet = _fleet(tmp_path, sim_url)
    suite = write_suite(tmp_path / "ref.jsonl", ROWS)
    daemon = tmp_path / "daemon.yaml"
    daemon.write_text(
        yaml.safe_dump(
            {"fleet": str(fleet), "schedules": [{"name": "s", "suite": str(suite), "every": "5m"}]}
        )
    )
    missing = str(tmp_path / "no-such-model")
    args = {
        "run": ["run", "--fleet", str(fleet), "--suite", str(suite)],
        "score": ["score", "--fleet", str(fleet)],
        "compare": ["compare", "--before", "24h..1h", "--after", "1h..0h"],
        "daemon": ["daemon", "--config", str(daemon), "--once"],
    }[command]
    code, out = invoke(*args, "--reference", missing)
    assert code == int(ExitCode.USAGE), out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and "no-such-model" in lines[0] and "canary:tiny" in lines[0], out
    assert "Traceback" not in out
