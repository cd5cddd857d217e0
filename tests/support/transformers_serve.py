"""A real third-party OpenAI-compatible server: `transformers serve` on the shipped model.

Hugging Face's own server applies the model's chat template, refuses fields it does not know
(`HTTP 422 Unexpected fields in the request: {'top_k'}`), returns no logprobs and takes its
sampler from the model's generation config unless the body's `generation_config` replaces it:
the behaviours a new user meets on day one. It runs as a child process, exactly as a user
starts it, offline (the model is a local directory).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.waiting import wait_until

__all__ = ["serve_available", "transformers_serve"]


def serve_available() -> bool:
    """Whether the `transformers[serving]` extra is installed (the dev install has it)."""
    from transformers.utils.import_utils import is_serve_available

    return bool(is_serve_available())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def transformers_serve(model_dir: Path, log: Path) -> Iterator[str]:
    """Serve `model_dir` with `transformers serve` on a free port; yield its `/v1` base URL."""
    if not serve_available():
        pytest.fail("transformers[serving] is not installed; run pip install -e '.[dev]'")
    port = _free_port()
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--device", "cpu", "--dtype", "float32", "--log-level", "warning"]
    with log.open("wb") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until(lambda: _answers(base + "/models"), child, "transformers serve answered")
        yield base
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
