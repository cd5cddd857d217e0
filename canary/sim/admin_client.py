"""A small client for the simulated fleet's admin API (used by `canary sim` and replays)."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from canary.errors import CanaryError, ExitCode

DEFAULT_URL = "http://127.0.0.1:8400"


def fault_update(sets: list[str], on: list[str], off: list[str]) -> dict[str, Any]:
    """Body for `PUT /admin/pools/{pool}/faults` from `name.key=value`, `--on name`, `--off name`.

    Values are read as YAML scalars (`0.05`, `true`, `[2, 8]`). `precision=bf16` sets a plain
    key; `corrupt_logits.p=0.05` merges into that fault (switching it on if it was off).
    """
    body: dict[str, Any] = {name: {} for name in on}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CanaryError(f"--set {item!r}: write NAME=VALUE or FAULT.KEY=VALUE")
        value = yaml.safe_load(raw) if raw else ""
        name, dot, field = key.partition(".")
        if dot:
            section = body.setdefault(name, {})
            if not isinstance(section, dict):
                raise CanaryError(f"--set {item!r}: {name} is already set to a plain value")
            section[field] = value
        else:
            body[name] = value
    for name in off:
        body[name] = None
    if not body:
        raise CanaryError("nothing to change; give --set, --on or --off")
    return body


class AdminClient:
    """Calls the admin routes; a refused request becomes a one-line `CanaryError`."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            response = httpx.request(method, self.url + path, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise CanaryError(
                f"{self.url}: cannot reach the simulated fleet ({exc}); "
                "is `canary sim serve` running?",
                exit_code=ExitCode.ENDPOINT,
            ) from None
        data: dict[str, Any] = response.json()
        if response.status_code >= 400:
            message = data.get("error", {}).get("message", response.text)
            raise CanaryError(f"{self.url}{path}: {message}")
        return data

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/admin/state")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/admin/stats")

    def set_faults(self, pool: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/admin/pools/{pool}/faults", body)

    def set_router(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", "/admin/router", body)
