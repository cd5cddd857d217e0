"""canary against a real third-party server: `transformers serve` on the shipped model.

What a new user meets on day one, with the fleet file as the only fix: the server refuses
`top_k` (so the endpoint drops it), returns no logprobs, applies the model's chat template
(so the reference renders chat probes with the same template), and takes its sampler from the
body's `generation_config` when one is sent (so a misconfigured sampler is an `extra_body`
away). A healthy server must show no divergence; the misconfigured one must be caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from canary.sim import model_dir
from tests.support.cli import invoke
from tests.support.transformers_serve import serve_available, transformers_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not serve_available(), reason="needs transformers[serving] (dev extra)"),
]

#: A sampler the endpoint's operator did not mean: what a server's own defaults (a repetition
#: penalty) do to "temperature 0" when the body does not switch them off.
PENALISED = json.dumps({"repetition_penalty": 3.0})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "transformers-serve.log"
    with transformers_serve(model_dir(), log) as base:
        yield base


@pytest.fixture(scope="module")
def fleet(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    def endpoint(name: str, flavour: str, **extra: object) -> dict[str, object]:
        return {
            "name": name,
            "base_url": server,
            "flavour": flavour,
            "model": str(model_dir()),  # the server is pinned to the directory it serves
            "supports_logprobs": False,  # transformers serve ignores `logprobs`
            "drop_params": ["top_k"],  # ... and refuses `top_k` with HTTP 422
            "labels": {"pool": "hf-serve"},
            **extra,
        }

    config = {
        "version": 1,
        "reference": {"model": str(model_dir()), "chat_template": "model"},
        "endpoints": [
            endpoint("hf-completions", "openai-completions"),
            endpoint("hf-chat", "openai-chat"),
            endpoint(
                "hf-chat-penalised", "openai-chat", extra_body={"generation_config": PENALISED}
            ),
        ],
    }
    path = tmp_path_factory.mktemp("fleet") / "fleet.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _round(fleet: Path, db: str, endpoint: str, suite: str) -> dict[str, dict[str, int]]:
    code, out = invoke(
        "run", "--fleet", str(fleet), "--endpoint", endpoint, "--suite", suite, "--db", db, "--json"
    )
    assert code == 0, out
    report = json.loads(out)
    (row,) = report["endpoints"]
    assert row["ok"] == row["sent"] > 0, row  # no request refused: top_k was dropped
    metrics: dict[str, dict[str, int]] = report["scoring"]["metrics"]
    return metrics


@pytest.mark.parametrize("endpoint", ["hf-completions", "hf-chat"])
@pytest.mark.parametrize("suite", ["topk", "utf8"])
def test_healthy_server_shows_no_divergence(
    fleet: Path, tmp_path: Path, endpoint: str, suite: str
) -> None:
    metrics = _round(fleet, f"sqlite:///{tmp_path / 'canary.db'}", endpoint, suite)
    assert metrics["first_divergence"]["scored"] > 0, metrics
    assert metrics["first_divergence"]["flagged"] == 0, metrics
    assert metrics.get("greedy_not_argmax", {"flagged": 0})["flagged"] == 0, metrics
    # Without logprobs the agreement is measured on tokens or text: the reference's greedy
    # output is the server's, token for token, when the template matches.
    assert metrics["prefix_agreement"]["scored"] == metrics["first_divergence"]["scored"]


def test_misconfigured_sampler_is_flagged(fleet: Path, tmp_path: Path) -> None:
    metrics = _round(fleet, f"sqlite:///{tmp_path / 'canary.db'}", "hf-chat-penalised", "topk")
    assert metrics["first_divergence"]["flagged"] > 0, metrics


def test_chat_template_mismatch_is_visible(fleet: Path, tmp_path: Path) -> None:
    """The same healthy chat endpoint judged with canary's transcript template instead of the
    model's: a reference rendered differently from the server is not the same prompt."""
    config = yaml.safe_load(fleet.read_text())
    config["reference"]["chat_template"] = "chatml"
    wrong = tmp_path / "fleet.yaml"
    wrong.write_text(yaml.safe_dump(config))
    metrics = _round(wrong, f"sqlite:///{tmp_path / 'canary.db'}", "hf-chat", "topk")
    assert metrics["first_divergence"]["flagged"] > 0, metrics


def _doctor(fleet: Path, tmp_path: Path) -> tuple[int, list[dict[str, str]]]:
    db = f"sqlite:///{tmp_path / 'canary.db'}"
    assert invoke("db", "upgrade", "--db", db)[0] == 0
    code, out = invoke("doctor", "--fleet", str(fleet), "--db", db, "--json")
    checks: list[dict[str, str]] = json.loads(out)["checks"]
    return code, checks


def test_doctor_checks_the_reference_tokenizes_like_the_server(fleet: Path, tmp_path: Path) -> None:
    code, checks = _doctor(fleet, tmp_path)
    assert code == 0, checks
    tokens = [c for c in checks if c["name"].startswith("tokens ")]
    assert len(tokens) == 3 and all(c["status"] == "ok" for c in tokens), tokens


def test_doctor_names_a_chat_template_that_differs_from_the_server(
    fleet: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load(fleet.read_text())
    config["reference"]["chat_template"] = "chatml"
    wrong = tmp_path / "fleet.yaml"
    wrong.write_text(yaml.safe_dump(config))
    code, checks = _doctor(wrong, tmp_path)
    assert code == 3, checks  # a config problem, with what to fix
    chat = [c for c in checks if c["name"].startswith("tokens ") and "chat" in c["name"]]
    assert chat and all(c["status"] == "fail" for c in chat), chat
    assert all("chat_template" in (c.get("fix") or "") for c in chat), chat
