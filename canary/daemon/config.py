"""The daemon config file: what to probe when, under which loads, and what to do with alerts.

```yaml
fleet: fleet.example.yaml        # or `sim: true` for the embedded simulated fleet
database_url: postgresql+psycopg://canary@db/canary
schedules:
  - name: topk
    suite: topk
    select: ["route=direct"]
    every: 5m                    # or cron: "*/5 * * * *"
    jitter: 20s
    loads: [probe, burst-c8]
alerts: {baseline: healthy-2026-11}
sinks: [{type: webhook, url_env: CANARY_WEBHOOK_URL}]
```

Paths inside the file are relative to the file. Everything is strict: an unknown key is an error.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from canary.alerts.settings import AlertsConfig
from canary.alerts.sinks import SinkConfig, validate_sink_names
from canary.config.fleet import FormatVersion, Strict, check_slug
from canary.config.reference import ReferenceConfig
from canary.errors import ConfigError
from canary.store.retention import RetentionPolicy
from canary.timespec import parse_duration

CatchUp = Literal["none", "latest", "all"]
"""What a daemon does at start with slots that passed while no daemon was up."""


class LoadShape(Strict):
    """How a round is sent: the load shape is a cohort label (`load`) of every result."""

    name: str
    """Label value, e.g. `probe` or `burst-c32`."""
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 1
    """Requests of the round in flight at once per endpoint (the server batches them): some
    faults, like a batch-dependent approximate top-k, only show at batch sizes above 1. Capped
    by each endpoint's configured concurrency limit."""
    repeat: Annotated[int, Field(ge=1, le=1000)] = 1
    """Send the suite this many times in the round (fresh sessions each time): the probe budget
    per slot, and enough requests for a burst to fill its batches."""

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_slug(value, "burst-c8")


DEFAULT_LOADS = {
    "probe": LoadShape(name="probe", concurrency=1),
    "burst-c8": LoadShape(name="burst-c8", concurrency=8),
    "burst-c32": LoadShape(name="burst-c32", concurrency=32),
}


class ScheduleConfig(Strict):
    """One suite sent to a selection of endpoints on a timetable, under one or more loads."""

    name: str
    """Unique slug; with the slot time it names the unit of work two daemons must not repeat."""
    suite: str
    """Suite name (see `probes/`) or path."""
    endpoints: list[str] = Field(default_factory=list)
    """Endpoint names; empty with no `select` means every endpoint."""
    select: list[str] = Field(default_factory=list)
    """Label filters, e.g. `pool=gpu-fp32` or `route=direct` (all must match)."""
    every: str | None = None
    """Interval, e.g. `5m`; slots are aligned to the epoch so every daemon agrees on them."""
    cron: str | None = None
    """Crontab expression in UTC, e.g. `*/10 * * * *` (instead of `every`)."""
    jitter: str = "0s"
    """Random delay after each slot time, up to this much (less than half the period)."""
    loads: list[str | LoadShape] = Field(default_factory=lambda: list[str | LoadShape](["probe"]))
    """Load shapes, each a name from `load_shapes` (or the built-in probe, burst-c8,
    burst-c32) or an inline shape; they run one after another within a slot."""
    catch_up: CatchUp | None = None
    """Slots missed while no daemon was up: `none` (count and log them), `latest` (run the
    newest), `all` (run those within `recover_within`); unset: the daemon-wide `catch_up`."""

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_slug(value, "topk-direct")

    @model_validator(mode="after")
    def _one_timetable(self) -> ScheduleConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"schedule {self.name!r}: give exactly one of 'every' or 'cron'")
        if self.every is not None and parse_duration(self.every) <= timedelta(0):
            raise ValueError(f"schedule {self.name!r}: 'every' must be positive")
        if not self.loads:
            raise ValueError(f"schedule {self.name!r}: 'loads' is empty; e.g. [probe]")
        return self


class HttpConfig(Strict):
    """The control endpoint: POST /changes for CD systems, GET /metrics, GET /healthz."""

    host: str = "127.0.0.1"
    """Address to listen on; any non-loopback address needs the token (`token_env`) set."""
    port: Annotated[int, Field(ge=0, le=65535)] = 9464
    """Port (0 picks a free one)."""
    token_env: str = "CANARY_CHANGE_TOKEN"
    """Environment variable holding the bearer token POST /changes requires, when set."""


class AdaptiveConfig(Strict):
    """Adaptive probing (`canary.daemon.adaptive`): a slot's repeats move from quiet cohorts to
    cohorts whose monitors are pending, the slot's total unchanged."""

    enabled: bool = False
    """Off by default: every cohort gets its configured repeats."""
    max_boost: Annotated[float, Field(gt=1, le=16)] = 4.0
    """A pending cohort gets at most this many times its repeats; a quiet one keeps at least
    1/max_boost of its own (and at least one)."""
    rate_headroom: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Share of an endpoint's `rate_limit_rps` over a slot's period a boosted cohort may use."""


class DaemonConfig(Strict):
    """The whole daemon config file."""

    version: FormatVersion = 1
    """Config format version."""
    fleet: str | None = None
    """Path of the fleet config, relative to this file."""
    sim: bool = False
    """Probe the embedded simulated fleet instead of `fleet` (demos, tests, the replay)."""
    database_url: str | None = None
    """SQLAlchemy URL; `CANARY_DATABASE_URL` and `--db` take precedence."""
    schedules: list[ScheduleConfig]
    """What to probe and when."""
    reference: ReferenceConfig | None = None
    """What reference-based checks compare with; overrides the fleet file's `reference:`
    (`--reference DIR` and `CANARY_REFERENCE_MODEL` override both). Paths are relative to this
    file."""
    load_shapes: dict[str, LoadShape] = Field(default_factory=dict)
    """Named load shapes for `schedules[].loads`, in addition to the built-in ones."""
    alerts: AlertsConfig | None = None
    """Alerting against a baseline; without it the daemon only probes and scores."""
    sinks: list[SinkConfig] = Field(default_factory=lambda: [])
    """Where notifications go (none: alerts are only stored and shown by `canary alerts`)."""
    retention: RetentionPolicy | None = None
    """Pruning of raw outputs; none keeps everything."""
    retention_every: str = "1h"
    """How often retention runs."""
    http: HttpConfig | None = None
    """The control endpoint (changes in, metrics out); none: not started."""
    change_drop_dir: str | None = None
    """A directory a CD system drops change files into (JSON or YAML), relative to this file."""
    change_poll: str = "10s"
    """How often the drop directory is read."""
    lease: str = "60s"
    """Slot lease: a slot whose daemon stopped renewing it for this long is taken over."""
    recover_within: str = "1h"
    """Slots older than this when found orphaned are marked missed instead of re-run."""
    workers: Annotated[int, Field(ge=1, le=64)] = 4
    """Scheduler threads: schedules that can run at the same time."""
    score: bool = True
    """Score each round (detectors and the reference model) before alert evaluation."""
    catch_up: CatchUp = "none"
    """Slots missed while no daemon was up: `none` (count and log them), `latest` (run the
    newest of each schedule), `all` (run those within `recover_within`); per schedule too."""
    adaptive: AdaptiveConfig = Field(default_factory=AdaptiveConfig)
    """Adaptive probing: more of a slot's probes to cohorts whose alerts are pending (needs
    `alerts`)."""

    @model_validator(mode="after")
    def _consistent(self) -> DaemonConfig:
        if self.fleet is None and not self.sim:
            raise ValueError("give 'fleet: PATH' (or 'sim: true' for the simulated fleet)")
        names = [s.name for s in self.schedules]
        if len(set(names)) != len(names):
            raise ValueError("schedule names must be unique")
        if not self.schedules:
            raise ValueError("'schedules' is empty; add at least one")
        for schedule in self.schedules:
            for load in schedule.loads:
                if isinstance(load, str) and load not in self.known_loads():
                    known = ", ".join(sorted(self.known_loads()))
                    raise ValueError(
                        f"schedule {schedule.name!r}: unknown load {load!r} (known: {known})"
                    )
        validate_sink_names(self.sinks)
        if self.adaptive.enabled and self.alerts is None:
            raise ValueError("'adaptive' moves probes by alert state; it needs an 'alerts' block")
        for text in (self.lease, self.recover_within, self.retention_every, self.change_poll):
            parse_duration(text)
        return self

    def known_loads(self) -> dict[str, LoadShape]:
        return {**DEFAULT_LOADS, **self.load_shapes}

    def loads_of(self, schedule: ScheduleConfig) -> list[LoadShape]:
        known = self.known_loads()
        return [known[x] if isinstance(x, str) else x for x in schedule.loads]

    def catch_up_of(self, schedule: ScheduleConfig) -> CatchUp:
        """The schedule's own catch-up policy, else the daemon-wide one."""
        return schedule.catch_up or self.catch_up


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine (names other than
    `localhost` may resolve anywhere, so they count as not loopback)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_control_bind(
    http: HttpConfig, source: str, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse a control endpoint others can reach with no token: anyone on the network could
    post changes and steer alert attribution."""
    env = os.environ if environ is None else environ
    if is_loopback(http.host) or (env.get(http.token_env) or "").strip():
        return
    raise ConfigError(
        f"{source}: http.host {http.host!r} is reachable from other machines but "
        f"${http.token_env} is not set; export a token in ${http.token_env} "
        "or listen on 127.0.0.1"
    )


def secret_env_names(model: BaseModel) -> Iterator[str]:
    """Every environment variable a config names for a secret: fields called `*_env` (a name,
    or a mapping to names like `headers_env`), at any depth, plugin sinks included."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if name.endswith("_env"):
            if isinstance(value, str):
                yield value
            elif isinstance(value, Mapping):
                yield from (v for v in value.values() if isinstance(v, str))
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, BaseModel):
                yield from secret_env_names(item)


def load_daemon_config(path: str | Path) -> tuple[DaemonConfig, Path]:
    """Read and validate a daemon config; returns it with the directory paths are relative to."""
    from canary.config.loading import read_mapping, validate_model
    from canary.sanitize import register_secret_envs

    path = Path(path)
    data = read_mapping(path)
    config = validate_model(DaemonConfig, data, str(path))
    # Registered before anything can fail or log: a token echoed in an error is scrubbed.
    register_secret_envs(secret_env_names(config))
    if config.http is not None:
        check_control_bind(config.http, str(path))
    return config, path.resolve().parent
