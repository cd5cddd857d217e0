"""Loading probe suites from data files through `datasets`, so a suite can also be a dataset.

A suite is either a manifest (`probes/<name>.yaml`) that names its data file and per-suite
defaults, or a bare JSONL/CSV/Parquet file whose stem is the suite name. Nested fields
(`params`, `expect`, `messages`) are objects in JSONL/Parquet and JSON strings in CSV.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from canary.config.loading import read_mapping, validate_model
from canary.errors import ConfigError
from canary.probes.model import Suite
from canary.resources import resource_dir

_DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_NESTED = ("params", "expect", "messages", "tags", "tools")


class SuiteManifest(BaseModel):
    """A suite's manifest file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Suite name, used by `canary run --suite NAME`."""
    description: str = ""
    """What the suite is for."""
    data: str
    """Data file with one probe per row, relative to the manifest (JSONL, CSV or Parquet)."""
    defaults: dict[str, Any] = Field(default_factory=dict)
    """Fields merged under every probe (`params` and `expect` are merged key by key)."""


def default_probe_dirs() -> list[Path]:
    """Where `--suite NAME` is looked up: `CANARY_PROBES_DIR`, ./probes, then the shipped suites."""
    dirs: list[Path] = []
    if env := os.environ.get("CANARY_PROBES_DIR"):
        dirs.append(Path(env))
    dirs.append(Path.cwd() / "probes")
    shipped = resource_dir("probes")
    if shipped.resolve() != dirs[-1].resolve():
        dirs.append(shipped)
    return dirs


def resolve_suite_path(name_or_path: str) -> Path:
    """Map a suite name or path to its manifest or data file."""
    direct = Path(name_or_path)
    if direct.suffix and direct.exists():
        return direct
    for directory in default_probe_dirs():
        for suffix in (".yaml", ".yml", *_DATA_FORMATS):
            candidate = directory / f"{name_or_path}{suffix}"
            if candidate.exists():
                return candidate
    known = sorted({p.stem for d in default_probe_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    raise ConfigError(
        f"suite {name_or_path!r} not found; give a path or one of: {', '.join(known) or 'none'}"
    )


def list_suites() -> list[Path]:
    """Manifests of all suites found on the probe path, first occurrence of each name wins."""
    found: dict[str, Path] = {}
    for directory in default_probe_dirs():
        if directory.is_dir():
            for manifest in sorted(directory.glob("*.yaml")):
                found.setdefault(manifest.stem, manifest)
    return [found[name] for name in sorted(found)]


def load_suite(name_or_path: str | Path) -> Suite:
    """Load, validate and version a suite by name or path."""
    path = resolve_suite_path(str(name_or_path))
    if path.suffix in (".yaml", ".yml"):
        manifest = validate_model(SuiteManifest, read_mapping(path, "suite file"), str(path))
        data_path = (path.parent / manifest.data).resolve()
        name, description, defaults = manifest.name, manifest.description, manifest.defaults
    else:
        data_path, name, description, defaults = path, path.stem, "", {}
    rows = read_rows(data_path)
    probes = [_merge(defaults, row) for row in rows]
    for index, probe in enumerate(probes):
        probe.setdefault("id", f"{name}-{index}")
    return validate_model(
        Suite, {"name": name, "description": description, "probes": probes}, str(data_path)
    )


def read_rows(data_path: Path) -> list[dict[str, Any]]:
    """Read probe rows with `datasets` (local files only, nothing cached on disk)."""
    fmt = _DATA_FORMATS.get(data_path.suffix)
    if fmt is None:
        raise ConfigError(
            f"{data_path}: unsupported suite data format; use .jsonl, .csv or .parquet"
        )
    if not data_path.exists():
        raise ConfigError(f"{data_path}: suite data file not found")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        table = datasets.load_dataset(
            fmt, data_files=str(data_path), split="train", keep_in_memory=True
        )
    except Exception as exc:  # datasets raises many types for a bad file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{data_path}: cannot read suite data: {detail}") from None
    return [_clean_row(row, data_path, i + 1) for i, row in enumerate(table)]


def _clean_row(row: dict[str, Any], source: Path, line: int) -> dict[str, Any]:
    """Undo the columnar representation: drop the None fillers of absent keys, decode JSON."""
    cleaned: dict[str, Any] = {}
    for key, value in row.items():
        if key in _NESTED and isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else None
            except json.JSONDecodeError:
                raise ConfigError(f"{source}: row {line}: {key} is not valid JSON") from None
        value = _drop_none(value)
        if value is not None:
            cleaned[key] = value
    return cleaned


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _merge(defaults: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    merged = {**defaults, **row}
    for key in ("params", "expect"):
        if isinstance(defaults.get(key), dict) and isinstance(row.get(key), dict):
            merged[key] = {**defaults[key], **row[key]}
    return merged
