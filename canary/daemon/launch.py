"""Building a daemon from its config file, and running it until a signal says stop."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from canary.config.fleet import FleetConfig
from canary.daemon.config import load_daemon_config
from canary.daemon.service import Daemon
from canary.sanitize import SecretScrubFilter

logger = logging.getLogger(__name__)


def install_secret_filter() -> None:
    """Put `SecretScrubFilter` on every handler of the root logger (once each): the values of
    the secret variables the configs name never reach the daemon's log."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretScrubFilter) for f in handler.filters):
            handler.addFilter(SecretScrubFilter())


@contextmanager
def open_daemon(
    config_path: str | Path,
    *,
    db: str | None = None,
    owner: str | None = None,
    reference: str | None = None,
) -> Iterator[Daemon]:
    """The daemon of a config file, with its store open (and the simulated fleet, if asked).

    ``reference`` (`--reference DIR`) overrides the reference of the daemon config and the fleet
    file (see `canary.config.reference.resolve_reference`)."""
    from canary.config import load_fleet
    from canary.config.judged import with_resolved_reference
    from canary.store import open_store

    config, base_dir = load_daemon_config(config_path)  # registers the secret variables
    install_secret_filter()
    fleet_context: AbstractContextManager[FleetConfig]
    fleet_dir = None
    if config.sim:
        from canary.sim.embedded import embedded_fleet

        fleet_context = embedded_fleet()
    else:
        assert config.fleet is not None
        fleet_path = base_dir / config.fleet
        fleet_context = nullcontext(load_fleet(fleet_path))
        fleet_dir = fleet_path.parent
    with fleet_context as loaded:
        fleet = with_resolved_reference(
            loaded,
            reference,
            fleet_dir=fleet_dir,
            daemon=config.reference,
            daemon_dir=base_dir,
        )
        store = open_store(db, config_url=config.database_url or fleet.database_url)
        try:
            yield Daemon(config, fleet, store, base_dir=base_dir, owner=owner)
        finally:
            store.close()


def serve(daemon: Daemon, *, stop_after_s: float | None = None) -> None:
    """Run ``daemon`` until SIGTERM/SIGINT (graceful), or a second signal (immediate exit)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            logger.error("second signal: exiting without waiting for running rounds")
            os._exit(128 + signum)
        logger.warning("signal %d: finishing in-flight requests, then stopping", signum)
        stop.set()
        daemon.stop_flag.set()  # running rounds stop taking new requests at once

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.start()
        stop.wait(stop_after_s)
    finally:
        daemon.stop(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("daemon %s stopped", daemon.owner)
