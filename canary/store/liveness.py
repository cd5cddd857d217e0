"""Which `running` runs still have a live process behind them: host + pid + heartbeat.

A `canary run` killed with SIGKILL (or a machine that lost power) cannot close its run, so the
run would say `running` forever and nobody would look at its results. Each run records the host
and pid that run it and a heartbeat the process refreshes; `mark_abandoned_runs` closes every
`running` run whose process is provably gone as `abandoned`, with `finished_at` its last
heartbeat. On the run's own host the pid decides at once; elsewhere only a stale heartbeat can.
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import DBAPIError

from canary.errors import StoreError
from canary.store.models import RunRow


class Database(Protocol):
    """What liveness needs of the `Store` (which calls it, so it cannot import the Store)."""

    @property
    def engine(self) -> Engine: ...

    def write_transaction(self) -> AbstractContextManager[Connection]: ...


logger = logging.getLogger(__name__)

#: How often a running round refreshes its heartbeat (`canary.runner.once`).
HEARTBEAT_EVERY = timedelta(seconds=60)

#: A heartbeat older than this means the process is gone. Ten missed beats: a loaded machine,
#: a long GC pause or a database failover must not cost a live run its status, yet on-call
#: should see a dead run within one incident, not the next morning.
STALE_AFTER = timedelta(minutes=10)

#: The status `mark_abandoned_runs` gives (the daemon uses it too, for slots it takes over).
ABANDONED = "abandoned"


@dataclass(frozen=True)
class ProcessIdentity:
    """Who runs a round: host name, pid and the pid's start time (None where unknown)."""

    host: str
    pid: int
    started: int | None


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot; None without Linux's /proc.

    Two processes that had the same pid one after another have different start times, so this
    tells a reused pid from the process that recorded it.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    # Field 2 (the command name) is in parentheses and may hold spaces: split after it.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of proc(5), counted from field 3
    except (IndexError, ValueError):
        return None


def this_process() -> ProcessIdentity:
    """The identity `Store.start_run` records for the calling process."""
    pid = os.getpid()
    return ProcessIdentity(socket.gethostname(), pid, process_start_ticks(pid))


def process_alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` on this host is still the process that started at ``started``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    if started is None:
        return True
    now_started = process_start_ticks(pid)
    return now_started is None or now_started == started


@dataclass(frozen=True)
class _RunningRun:
    id: int
    host: str
    pid: int | None
    pid_started: int | None
    heartbeat_at: datetime | None
    started_at: datetime

    @property
    def last_seen(self) -> datetime:
        return self.heartbeat_at or self.started_at


def is_abandoned(
    run: _RunningRun, now: datetime, here: ProcessIdentity, stale_after: timedelta
) -> bool:
    """Dead pid on this host, or (another host, or no pid recorded) a stale heartbeat."""
    if run.host == here.host and run.pid is not None:
        # A live process is trusted even with a stale heartbeat (it may be suspended):
        # marking it would make its later `finish_run` contradict what on-call was told.
        return not process_alive(run.pid, run.pid_started)
    return now - run.last_seen > stale_after


def record_heartbeat(conn: Connection, run_id: int, now: datetime) -> bool:
    """Refresh the heartbeat of a `running` run; False when the run is not running."""
    done = conn.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == "running")
        .values(heartbeat_at=now)
    )
    return bool(done.rowcount)


def mark_abandoned_runs(
    store: Database, now: datetime, *, stale_after: timedelta = STALE_AFTER
) -> list[int]:
    """Close every `running` run whose process is gone as `abandoned`; returns their ids.

    Reads first and writes only when there is something to mark, and a database that refuses
    the write (read-only) is logged, not raised, so listing runs still works. Each update
    re-checks the heartbeat it judged, so a run that beat in between is left alone.
    """
    here = this_process()
    with store.engine.begin() as conn:
        running = [
            _RunningRun(*row)
            for row in conn.execute(
                select(
                    RunRow.id,
                    RunRow.host,
                    RunRow.pid,
                    RunRow.pid_started,
                    RunRow.heartbeat_at,
                    RunRow.started_at,
                ).where(RunRow.status == "running")
            )
        ]
    dead = [run for run in running if is_abandoned(run, now, here, stale_after)]
    if not dead:
        return []
    try:
        return _mark(store, dead)
    except (DBAPIError, StoreError) as exc:  # StoreError: the engine's read-only translation
        orig = getattr(exc, "orig", None)
        reason = str(orig or exc).strip().splitlines()[0]
        ids = ", ".join(str(run.id) for run in dead)
        logger.warning("runs %s were abandoned but cannot be marked so: %s", ids, reason)
        return []


def _mark(store: Database, dead: list[_RunningRun]) -> list[int]:
    marked: list[int] = []
    with store.write_transaction() as conn:
        for run in dead:
            done = conn.execute(
                update(RunRow)
                .where(
                    RunRow.id == run.id,
                    RunRow.status == "running",
                    RunRow.heartbeat_at.is_(None)
                    if run.heartbeat_at is None
                    else RunRow.heartbeat_at == run.heartbeat_at,
                )
                .values(status=ABANDONED, finished_at=run.last_seen)
            )
            if done.rowcount:
                marked.append(run.id)
    return marked
