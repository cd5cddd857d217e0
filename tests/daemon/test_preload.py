"""The model stack is loaded once, under a lock: two threads that both need it first, in a fresh
interpreter (so the import really is the first), both get it."""

from __future__ import annotations

import json
import subprocess
import sys

from canary.daemon.preload import needs_reference
from canary.probes import load_suite

# Thread "daemon" takes the daemon's start-up path; thread "slot" is a slot thread that scores
# at the same moment without waiting for it. Before the lock, one of them failed with
# "ImportError: cannot import name 'AutoModelForCausalLM'".
SCRIPT = """
import json, sys, threading, traceback
from canary.daemon.preload import preload_model_stack
from canary.scoring.reference import shared_reference_model

assert "transformers" not in sys.modules and "torch" not in sys.modules
barrier = threading.Barrier(2)
done, errors = [], []

def run(name, load):
    barrier.wait()
    try:
        load()
        done.append(name)
    except BaseException:
        errors.append(traceback.format_exc().strip().splitlines()[-1])

threads = [
    threading.Thread(target=run, args=("daemon", lambda: preload_model_stack(reference=True))),
    threading.Thread(target=run, args=("slot", lambda: shared_reference_model(None).fingerprint)),
]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"done": sorted(done), "errors": errors}))
"""


def test_two_threads_loading_the_model_stack_first_both_succeed() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"done": ["daemon", "slot"], "errors": []}


def test_only_suites_scored_against_the_reference_load_the_model() -> None:
    assert needs_reference([load_suite("topk")])
    assert not needs_reference([load_suite("script")])
