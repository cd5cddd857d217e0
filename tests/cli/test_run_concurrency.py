"""`canary run --concurrency` is capped by each endpoint's own limit, and says so."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from canary.cli.main import app
from tests.support.openai_server import serve_openai

runner = CliRunner()


def test_concurrency_above_an_endpoint_limit_is_capped_with_one_notice_per_endpoint(
    tmp_path: Path, sqlite_url: str
) -> None:
    suite = tmp_path / "many.jsonl"
    suite.write_text("".join(json.dumps({"id": f"p{i}", "prompt": "hi"}) + "\n" for i in range(24)))
    with serve_openai(latency_s=0.05) as capped_server, serve_openai() as roomy_server:
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text(
            "defaults: {concurrency: 2, max_retries: 0}\n"
            "endpoints:\n"
            f"  - {{name: small, base_url: '{capped_server.base_url}', model: m}}\n"
            f"  - {{name: roomy, base_url: '{roomy_server.base_url}', model: m,"
            " limits: {concurrency: 64}}\n"
        )
        args = ["run", "-f", str(fleet), "--suite", str(suite), "--db", sqlite_url]
        result = runner.invoke(app, [*args, "--concurrency", "32", "--json", "--no-score"])
        assert result.exit_code == 0, result.output
        assert capped_server.max_in_flight <= 2  # the endpoint's limit holds
    assert result.stderr.splitlines() == [
        "endpoint small: --concurrency 32 capped at its limits.concurrency 2; "
        "raise it in the fleet file"
    ]
    assert {e["endpoint"]: e["ok"] for e in json.loads(result.stdout)["endpoints"]} == {
        "small": 24,
        "roomy": 24,
    }


def test_no_notice_without_the_option_or_below_the_limit(tmp_path: Path, sqlite_url: str) -> None:
    suite = tmp_path / "one.jsonl"
    suite.write_text(json.dumps({"id": "p", "prompt": "hi"}) + "\n")
    with serve_openai() as server:
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text(f"endpoints:\n  - {{name: a, base_url: '{server.base_url}', model: m}}\n")
        args = ["run", "-f", str(fleet), "--suite", str(suite), "--db", sqlite_url, "--no-score"]
        for extra in ([], ["--concurrency", "4"], ["--concurrency", "1"]):
            result = runner.invoke(app, [*args, *extra])
            assert result.exit_code == 0, result.output
            assert "capped" not in result.output


def test_the_help_says_the_option_is_capped() -> None:
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "capped by each endpoint's limits.concurrency" in " ".join(result.output.split())
