"""`canary doctor` checks the reference against each endpoint: the same tokens for one probe,
by the endpoint's `/tokenize` where it has one, else by `usage.prompt_tokens`.

The servers are real: the simulated fleet and `transformers serve` (no `/tokenize`), and a local
fake of vLLM's `/tokenize` wire format that tokenizes with the shipped tokenizer, applying the
template and special tokens it is told to (what a misconfigured server does).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.config import load_fleet
from canary.config.fleet import EndpointConfig, FleetConfig
from canary.config.reference import SHIPPED_MODEL, ReferenceConfig
from canary.doctor._reference import check_reference
from canary.reference._templates import NAMED_TEMPLATES
from canary.sim import model_dir
from tests.doctor.helpers import by_name


class _VllmTokenize(BaseHTTPRequestHandler):
    """`POST /tokenize` as vLLM answers it: `{"tokens": [...], "count": n}`."""

    template: str | None = None  # None: the tokenizer's own
    extra_bos = False

    def do_POST(self) -> None:
        from transformers import AutoTokenizer

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/tokenize":
            self._send(404, {"detail": "Not Found"})
            return
        tok = AutoTokenizer.from_pretrained(model_dir())
        if "messages" in body:
            text = tok.apply_chat_template(
                body["messages"],
                chat_template=self.template,
                tokenize=False,
                add_generation_prompt=True,
            )
            ids = tok(text, add_special_tokens=self.extra_bos)["input_ids"]
        else:
            ids = tok(body["prompt"], add_special_tokens=True)["input_ids"]
        self._send(200, {"tokens": ids, "count": len(ids), "max_model_len": 1024})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def vllm() -> Iterator[type[_VllmTokenize]]:
    handler = type("Handler", (_VllmTokenize,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _fleet(base_url: str, **chat: Any) -> FleetConfig:
    return FleetConfig(
        endpoints=[
            EndpointConfig(
                name="chat", base_url=base_url, flavour="openai-chat", model="m", **chat
            ),
            EndpointConfig(name="text", base_url=base_url, flavour="openai-completions", model="m"),
        ],
        reference=ReferenceConfig(model=SHIPPED_MODEL),
    )


def test_same_tokens_by_the_endpoints_tokenize(vllm: Any) -> None:
    checks = by_name(check_reference(_fleet(vllm.base_url), 10.0))
    assert checks["reference"].status == "ok"
    for name in ("tokens chat", "tokens text"):
        assert checks[name].status == "ok", checks[name]
        assert "POST " in checks[name].detail and "/tokenize" in checks[name].detail


def test_another_chat_template_is_named_with_the_fix(vllm: Any) -> None:
    served = "{{ bos_token }}" + NAMED_TEMPLATES["chatml"]
    vllm.template = served
    checks = by_name(check_reference(_fleet(vllm.base_url), 10.0))
    chat = checks["tokens chat"]
    assert chat.status == "fail" and chat.area == "config"
    assert "chat templates differ" in chat.fix and "chat_template:" in chat.fix
    assert checks["tokens text"].status == "ok"
    # The fix works: the endpoint names the template its server applies.
    fixed = by_name(check_reference(_fleet(vllm.base_url, chat_template=served), 10.0))
    assert fixed["tokens chat"].status == "ok", fixed["tokens chat"]


def test_a_template_without_bos_is_named(vllm: Any) -> None:
    # Servers add no special tokens after a chat template: a template without {{ bos_token }}
    # leaves the model without the bos it was trained with, where the reference adds it.
    vllm.template = NAMED_TEMPLATES["chatml"]
    chat = by_name(check_reference(_fleet(vllm.base_url, chat_template="chatml"), 10.0))
    assert chat["tokens chat"].status == "fail"
    assert "adds no bos" in chat["tokens chat"].fix


def test_a_second_bos_is_named(vllm: Any) -> None:
    vllm.extra_bos = True  # template starts with {{ bos_token }} and the server adds one more
    chat = by_name(check_reference(_fleet(vllm.base_url), 10.0))["tokens chat"]
    assert chat.status == "fail" and "second bos" in chat.fix


def test_no_reference_is_a_warning_with_how_to_configure(vllm: Any) -> None:
    fleet = _fleet(vllm.base_url).model_copy(update={"reference": None})
    [check] = check_reference(fleet, 10.0)
    assert check.status == "warn" and "--reference DIR" in check.fix


def test_simulated_fleet_by_usage_prompt_tokens() -> None:
    from canary.sim.embedded import embedded_fleet

    with embedded_fleet() as fleet:
        checks = by_name(check_reference(fleet, 30.0))
    for endpoint in fleet.endpoints:
        check = checks[f"tokens {endpoint.name}"]
        assert check.status == "ok", check
        assert "usage.prompt_tokens" in check.detail


@pytest.mark.slow
def test_transformers_serve_agrees_with_the_fleet_files_reference(tmp_path: Path) -> None:
    """A real third-party server on the shipped model, with its shipped chat template."""
    from canary.doctor import run_checks
    from tests.support.transformers_serve import transformers_serve

    with transformers_serve(model_dir(), tmp_path / "serve.log") as base_url:
        fleet_file = tmp_path / "fleet.yaml"
        fleet_file.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "reference": {"model": SHIPPED_MODEL},
                    "endpoints": [
                        {
                            "name": f,
                            "base_url": base_url,
                            "flavour": f"openai-{f}",
                            "model": str(model_dir()),
                        }
                        for f in ("chat", "completions")
                    ],
                }
            )
        )
        load_fleet(fleet_file)
        checks = by_name(run_checks(fleet=fleet_file, db=f"sqlite:///{tmp_path / 'c.db'}"))
    for name in ("tokens chat", "tokens completions"):
        assert checks[name].status == "ok", checks[name]
        assert "usage.prompt_tokens" in checks[name].detail
