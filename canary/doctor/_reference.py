"""The reference against each endpoint: does the endpoint's model see the same tokens?

A reference that renders chat probes with another template, or encodes with one bos more or
less, disagrees with a healthy endpoint from the first token on; that looks like a broken
endpoint. For each endpoint, one probe is rendered and encoded as the reference would, and
compared with the endpoint's own tokenization (`canary.endpoints.tokenize`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from canary.doctor._check import Check, failure
from canary.errors import CanaryError

if TYPE_CHECKING:
    from canary.config.fleet import EndpointConfig, FleetConfig
    from canary.config.reference import ReferenceConfig
    from canary.endpoints.tokenize import RemoteTokens
    from canary.probes.model import Probe
    from canary.reference import ReferenceModel

#: The probe whose tokenization is compared (plain ASCII: any tokenizer handles it).
DOCTOR_PROMPT = "Return the number of items in the list."


def check_reference(
    fleet: FleetConfig,
    timeout_s: float,
    *,
    fleet_dir: Path | None = None,
    daemon: ReferenceConfig | None = None,
    daemon_dir: Path | None = None,
    skip: Collection[str] = (),
) -> list[Check]:
    """The resolved reference (`resolve_reference`), then each endpoint's tokenization of one
    probe against it (but those in ``skip``: the endpoint check already failed them)."""
    from canary.config.judged import with_resolved_reference
    from canary.config.reference import NO_REFERENCE_HINT, describe_reference

    try:
        judged = with_resolved_reference(
            fleet, fleet_dir=fleet_dir, daemon=daemon, daemon_dir=daemon_dir
        )
    except CanaryError as exc:
        return [failure("reference", exc, "config")]
    reference = judged.reference
    if reference is None:
        detail, _, fix = NO_REFERENCE_HINT.partition(": ")
        return [Check("reference", "warn", detail, fix)]
    if reference.endpoint is not None:
        detail = f"endpoint {reference.endpoint}: its stored outputs judge the others"
        return [Check("reference", "ok", detail)]
    from canary.scoring.reference import shared_reference_model

    try:
        model = shared_reference_model(reference.model, reference.device, reference.dtype)
    except CanaryError as exc:
        return [failure("reference", exc, "config")]
    checks = [Check("reference", "ok", f"{describe_reference(reference)} loaded")]

    async def all_of() -> list[Check]:
        found = (
            _tokenization(model, judged, e, timeout_s)
            for e in judged.endpoints
            if e.name not in skip
        )
        return list(await asyncio.gather(*found))

    return checks + asyncio.run(all_of())


async def _tokenization(
    model: ReferenceModel, fleet: FleetConfig, endpoint: EndpointConfig, timeout_s: float
) -> Check:
    from canary.endpoints.tokenize import remote_tokens
    from canary.probes.model import Message, Probe
    from canary.reference import encode_prompt

    name = f"tokens {endpoint.name}"
    if not endpoint.flavour.startswith("openai"):
        return Check(name, "ok", f"{endpoint.flavour}: no tokenization to compare", area="endpoint")
    chat = "chat" in endpoint.flavour
    probe = (
        Probe(id="canary-doctor", messages=[Message(role="user", content=DOCTOR_PROMPT)])
        if chat
        else Probe(id="canary-doctor", prompt=DOCTOR_PROMPT)
    )
    spec = endpoint.chat_template
    if spec is None and fleet.reference is not None:
        spec = fleet.reference.chat_template
    try:
        ours = encode_prompt(model.tokenizer, model.render(probe, endpoint.flavour, spec))
    except CanaryError as exc:
        return failure(name, exc, "config")
    messages = [{"role": m.role, "content": m.content} for m in probe.as_messages()]
    theirs = await remote_tokens(
        endpoint,
        timeout_s,
        prompt=None if chat else DOCTOR_PROMPT,
        messages=messages if chat else None,
    )
    return _verdict(name, model, endpoint, probe, ours, theirs, spec)


def _verdict(
    name: str,
    model: ReferenceModel,
    endpoint: EndpointConfig,
    probe: Probe,
    ours: list[int],
    theirs: RemoteTokens,
    spec: str | None,
) -> Check:
    if theirs.count is None:
        detail = f"could not count the endpoint's prompt tokens ({theirs.via})"
        return Check(name, "warn", detail, "run `canary doctor` again once the endpoint answers")
    same = theirs.count == len(ours) and (theirs.ids is None or theirs.ids == ours)
    where = f"{theirs.count} tokens by {theirs.via}, reference {len(ours)}"
    if same:
        return Check(name, "ok", f"same tokenization ({where})", area="endpoint")
    bos = model.tokenizer.bos_token_id
    starts_bos = bool(ours) and ours[0] == bos
    chat = "chat" in endpoint.flavour
    if theirs.count == len(ours) + 1:
        fix = (
            "the endpoint adds a second bos: its chat template starts with the bos token and the "
            "server adds special tokens too; fix the server's template or its add_special_tokens"
            if chat
            else "the endpoint adds one token more (a second bos?); check its add_special_tokens"
        )
    elif theirs.count == len(ours) - 1 and starts_bos:
        fix = (
            "the endpoint adds no bos where the reference does: start the chat template with "
            "{{ bos_token }}, or set the server to add special tokens"
        )
    elif chat:
        used = model.template(spec).label
        fix = (
            f"chat templates differ (reference applies {used}): set chat_template: on endpoint "
            f"{endpoint.name!r} (or reference.chat_template) to what the server applies: "
            "'model', a named template (transcript, chatml, llama3) or the Jinja text"
        )
    else:
        fix = (
            "the prompt itself tokenizes differently: is reference.model the model this "
            f"endpoint serves ({endpoint.model})?"
        )
    # A configuration to fix, not an endpoint to page about.
    return Check(name, "fail", f"different tokenization ({where})", fix, "config")
