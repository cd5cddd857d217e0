"""Choosing endpoints by name or by cohort label (`--endpoint E`, `--select pool=tpu`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.errors import ConfigError


def parse_label_filters(selectors: Sequence[str]) -> dict[str, str]:
    """Parse `key=value` selectors into a filter; every pair must match (AND)."""
    filters: dict[str, str] = {}
    for selector in selectors:
        key, sep, value = selector.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(f"--select {selector!r}: write label=value, e.g. --select pool=tpu-a")
        if key in filters and filters[key] != value:
            raise ConfigError(f"--select gives {key} twice ({filters[key]!r} and {value!r})")
        filters[key] = value
    return filters


def labels_match(labels: Mapping[str, str], filters: Mapping[str, str]) -> bool:
    """Whether ``labels`` carry every ``filters`` pair (no filters: always)."""
    return all(labels.get(key) == value for key, value in filters.items())


def select_endpoints(
    fleet: FleetConfig, names: Sequence[str] = (), selectors: Sequence[str] = ()
) -> list[EndpointConfig]:
    """Endpoints named in ``names`` (all when none) whose cohort labels match ``selectors``."""
    chosen = [fleet.endpoint(name) for name in names] if names else list(fleet.endpoints)
    filters = parse_label_filters(selectors)
    matched = [e for e in chosen if labels_match(e.cohort_labels(), filters)]
    if not matched:
        wanted = ", ".join(f"{k}={v}" for k, v in filters.items())
        raise ConfigError(f"no endpoint matches {wanted}; see the labels in your fleet config")
    return matched
