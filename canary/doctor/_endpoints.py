"""Endpoint checks: one real one-token request per endpoint, through its production adapter."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from canary.doctor._check import Check, failure
from canary.errors import CanaryError

if TYPE_CHECKING:
    from canary.config.fleet import EndpointConfig, FleetConfig
    from canary.records import ResultRecord


def check_endpoints(fleet: FleetConfig, timeout_s: float) -> list[Check]:
    """Every endpoint of ``fleet``, at once; each request bounded by ``timeout_s``, no retries."""

    async def all_of() -> list[Check]:
        checks = (_check_endpoint(fleet, e, timeout_s) for e in fleet.endpoints)
        return list(await asyncio.gather(*checks))

    return asyncio.run(all_of())


async def _check_endpoint(fleet: FleetConfig, endpoint: EndpointConfig, timeout_s: float) -> Check:
    from canary.endpoints import make_client
    from canary.probes.model import Probe, SamplingParams

    name = f"endpoint {endpoint.name}"
    env = endpoint.api_key_env
    if env is not None and not os.environ.get(env, "").strip():
        return Check(
            name,
            "fail",
            f"environment variable {env} (api_key_env) is not set",
            f"export {env} in canary's environment (the key itself never goes in a config file)",
            "config",
        )
    configured = fleet.limits_for(endpoint)
    # No retries: the doctor reports what one request finds, within the time it was given.
    limits = configured.model_copy(
        update={
            "timeout_s": timeout_s,
            "connect_timeout_s": min(timeout_s, configured.connect_timeout_s),
            "max_retries": 0,
        }
    )
    probe = Probe(id="canary-doctor", prompt="Say OK.", params=SamplingParams(max_tokens=1))
    try:
        async with make_client(endpoint, limits, semaphore=asyncio.Semaphore(1)) as client:
            record = await client.send(
                probe, session_id="canary-doctor", labels=endpoint.cohort_labels()
            )
    except CanaryError as exc:  # an unknown flavour
        return failure(name, exc, "config")
    return _verdict(name, endpoint, record, timeout_s)


def _verdict(name: str, endpoint: EndpointConfig, record: ResultRecord, timeout_s: float) -> Check:
    took = f"{record.latency_ms:.0f} ms"
    if record.error_kind is None:
        detail = (
            f"{endpoint.base_url}: HTTP {record.status_code} in {took} "
            f"({endpoint.flavour}, model {endpoint.model})"
        )
        return Check(name, "ok", detail, area="endpoint")
    detail = f"{record.error_detail or record.error_kind} ({record.error_kind}, {took})"
    if endpoint.base_url not in detail:
        detail = f"{endpoint.base_url}: {detail}"
    if record.error_kind == "http_429":
        fix = "it answers but rate-limits canary; lower rate_limit_rps or ask for more quota"
        return Check(name, "warn", detail, fix, "endpoint")
    return Check(name, "fail", detail, _fix(endpoint, record, timeout_s), "endpoint")


def _fix(endpoint: EndpointConfig, record: ResultRecord, timeout_s: float) -> str:
    kind, status = record.error_kind, record.status_code
    if kind == "connect":
        return "is the server up and base_url right? (host, port, scheme)"
    if kind == "timeout":
        return f"nothing answered within {timeout_s:g} s; check the server, or raise --timeout"
    if status in (401, 403):
        if endpoint.api_key_env is None:
            return "the endpoint wants a key: name its variable in api_key_env"
        return f"the key in {endpoint.api_key_env} was refused; check it is current"
    if status == 404:
        return "check base_url (up to and including the API prefix, e.g. /v1) and model"
    if kind == "http_4xx":
        return f"the request was refused; check model {endpoint.model!r} and flavour"
    if kind == "malformed":
        return f"the reply is not {endpoint.flavour}; check the flavour"
    return "the server failed the request; check its logs"
