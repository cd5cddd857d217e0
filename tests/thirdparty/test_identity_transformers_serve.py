"""`canary identity` against a real third-party server: is `transformers serve` serving the
fleet's `reference:` model, or a 4-bit build of it?

The 4-bit build is what a user writes with `canary sim quantize --bits 4`; each build is served
by its own `transformers serve` (the server is pinned to the directory it was started on and
refuses any other `model`). The server returns no logprobs, so the KL tests cannot run: "same"
rests on the border inputs' flip rate, "different" on any test. Its one trap is the sampler:
the shipped model's generation config says `do_sample: false`, and the server keeps it even for
`temperature: 1.0`, so the fleet file turns sampling on through `generation_config` (and turns
off the `top_k: 50` transformers would otherwise add); without that, every "sample" is the
greedy text and even the fp32 build is not the reference's sampler.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.sim import model_dir
from tests.support.cli import invoke
from tests.support.transformers_serve import serve_available, transformers_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not serve_available(), reason="needs transformers[serving] (dev extra)"),
]

#: What `temperature: 1.0` means to the reference: sample, from the whole vocabulary.
SAMPLE = json.dumps({"do_sample": True, "top_k": 0})
#: Few prompts for MMD/RUT (they have little power here); the 200 border inputs decide.
BUDGET = "10"
#: Each check's false "different" rate: the verdict rests on p-values far below it.
ALPHA = "0.001"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("identity-serve")
    int4 = root / "int4"
    code, out = invoke("sim", "quantize", "--bits", "4", "--group-size", "32", "--out", str(int4))
    assert code == 0, out
    builds = {"fp32": model_dir(), "int4": int4}

    def endpoint(name: str, build: str, url: str, **extra: object) -> dict[str, object]:
        return {
            "name": name,
            "base_url": url,
            "flavour": "openai-completions",  # border inputs are plain prompts
            "model": str(builds[build]),
            "supports_logprobs": False,
            "drop_params": ["top_k"],
            **extra,
        }

    with ExitStack() as stack:
        urls = {
            build: stack.enter_context(transformers_serve(path, root / f"{build}.log"))
            for build, path in builds.items()
        }
        sampled: dict[str, Any] = {"extra_body": {"generation_config": SAMPLE}}
        config = {
            "version": 1,
            "reference": {"model": "canary:tiny"},
            "endpoints": [
                endpoint("hf-fp32", "fp32", urls["fp32"], **sampled),
                endpoint("hf-int4", "int4", urls["int4"], **sampled),
                endpoint("hf-fp32-greedy", "fp32", urls["fp32"]),
            ],
        }
        path = root / "fleet.yaml"
        path.write_text(yaml.safe_dump(config))
        yield path


def _identity(fleet: Path, tmp_path: Path, endpoint: str) -> tuple[int, dict[str, Any]]:
    db = f"sqlite:///{tmp_path / 'canary.db'}"
    args = ["--fleet", str(fleet), "--endpoint", endpoint, "--budget", BUDGET, "--alpha", ALPHA]
    code, out = invoke("identity", *args, "--db", db, "--json")
    report: dict[str, Any] = json.loads(out)
    assert "no top-k logprobs in the answers: KL tests not run" in report["notes"], report
    return code, report


def _tests(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in report["tests"]}


def test_fp32_build_is_the_same_model(fleet: Path, tmp_path: Path) -> None:
    code, report = _identity(fleet, tmp_path, "hf-fp32")
    assert (code, report["verdict"]) == (0, "same"), report
    tests = _tests(report)
    assert set(tests) == {"mmd-hamming", "rut", "border-flips"}, report
    assert all(t["p_value"] > report["level"] for t in tests.values()), report
    border = tests["border-flips"]
    assert border["samples"] == 200 and border["p_same"] <= report["level"], border
    assert not [e for e in report["evidence"] if e["test"] == "border"], report


def test_4bit_build_is_a_different_model(fleet: Path, tmp_path: Path) -> None:
    code, report = _identity(fleet, tmp_path, "hf-int4")
    assert (code, report["verdict"]) == (1, "different"), report
    border = _tests(report)["border-flips"]
    assert border["p_value"] <= report["level"], border
    assert border["effects"]["flip_rate"] > 0.1, border  # noise flips ~0.2%; int4 far more
    flipped = [e for e in report["evidence"] if e["test"] == "border"]
    assert flipped and all(e["endpoint"] != e["trusted"] for e in flipped), report


def test_server_that_ignores_the_temperature_is_not_the_reference_sampler(
    fleet: Path, tmp_path: Path
) -> None:
    """The fp32 build with the server's own sampler: greedy text for `temperature: 1.0`."""
    code, report = _identity(fleet, tmp_path, "hf-fp32-greedy")
    assert (code, report["verdict"]) == (1, "different"), report
    tests = _tests(report)
    assert tests["border-flips"]["p_value"] > report["level"], report  # greedy is still right
    rejected = [t for t in ("mmd-hamming", "rut") if tests[t]["p_value"] <= report["level"]]
    assert rejected, report
