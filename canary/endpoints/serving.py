"""Which stack answered: serving metadata of a reply, kept as headers and cohort labels.

A reply may say which build, pod or hardware served it: OpenAI's `system_fingerprint`, and
response headers a fleet names in `record_headers`. Each becomes a cohort label of that one
result (`x-served-by` → `x_served_by`), so `canary cohorts`, `compare --by` and alerts can split
by it. The values come from the endpoint, so they are hostile: a label value is one printable
line of at most `MAX_LABEL_VALUE` characters, secrets scrubbed, and an empty one is no label.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from canary.config.fleet import EndpointConfig
from canary.config.shaping import header_label
from canary.sanitize import one_line

__all__ = ["MAX_LABEL_VALUE", "kept_headers", "label_value", "serving_labels"]

#: Longest cohort label value taken from a reply; longer ones are cut.
MAX_LABEL_VALUE = 64


def label_value(raw: str | None) -> str | None:
    """`raw` as a cohort label value: one printable line, bounded; None when nothing is left."""
    if raw is None:
        return None
    value = one_line(raw).strip()[:MAX_LABEL_VALUE].strip()
    return value or None


def kept_headers(endpoint: EndpointConfig, headers: httpx.Headers | None) -> dict[str, str]:
    """The response headers stored with a result: `served_by_headers` and `record_headers`."""
    if headers is None:
        return {}
    names = [*endpoint.served_by_headers, *endpoint.record_headers]
    wanted = dict.fromkeys(h.lower() for h in names)
    return {h: headers[h] for h in wanted if h in headers}


def serving_labels(
    endpoint: EndpointConfig, headers: Mapping[str, str], system_fingerprint: str | None
) -> dict[str, str]:
    """The cohort labels a reply adds: each recorded header present, and `system_fingerprint`."""
    labels: dict[str, str] = {}
    for header in endpoint.record_headers:
        value = label_value(headers.get(header))
        if value is not None:
            labels[header_label(header)] = value
    fingerprint = label_value(system_fingerprint)
    if fingerprint is not None:
        labels["system_fingerprint"] = fingerprint
    return labels
