"""Waiting for an event of another process, without making its speed part of the test.

A test that waits for a child process (a writer, a `canary run`) must not hang forever if the
child is broken, but neither may it fail because a busy machine is slow. `wait_until` polls,
fails at once if the child died, and gives up only after a patience far beyond any honest
delay: it bounds a hang, it does not measure speed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest

#: How long a child may take to reach an event. Not a speed goal: a loaded 2-core machine is
#: far faster than this; it is only here so a broken child fails the test instead of hanging.
PATIENCE_S = 600.0


def wait_until(
    event: Callable[[], bool],
    child: subprocess.Popen[bytes],
    what: str,
    *,
    poll_s: float = 0.05,
) -> None:
    """Poll `event` until true; fail with the child's output if it exits or never gets there."""
    give_up = time.monotonic() + PATIENCE_S
    while not event():
        if child.poll() is not None:
            out, err = child.communicate()
            tail = (err or out or b"")[-3000:]
            pytest.fail(f"the child exited {child.returncode} before {what}:\n{tail!r}")
        if time.monotonic() > give_up:
            pytest.fail(f"the child was still short of {what} after {PATIENCE_S:.0f} s: it hangs")
        time.sleep(poll_s)
