"""Writes result batches to a store until killed: the victim of test_crash.py.

Usage: python -m tests.store._writer URL RUN_ID SUITE_ID BATCH_SIZE
"""

from __future__ import annotations

import sys

from canary.store import open_store
from tests.store.helpers import batch


def main() -> None:
    url, run_id, suite_id, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = open_store(url, auto_create=False)
    written = 0
    while True:
        store.save_results(run_id, suite_id, batch(size, start=written))
        written += size
        print(written, flush=True)


if __name__ == "__main__":
    main()
