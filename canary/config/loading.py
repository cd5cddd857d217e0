"""Reading config files into validated models, with errors that name file, path and fix."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from canary.errors import ConfigError
from canary.sanitize import one_line

M = TypeVar("M", bound=BaseModel)


def read_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    """Parse a YAML, TOML or JSON file whose top level must be a mapping.

    ``what`` names the file in the not-UTF-8 message ("fleet file", "suite file").
    """
    text = read_text(path, what)
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fmt = path.suffix.lstrip(".") or "YAML"
        raise ConfigError(f"{path}: not valid {fmt}: {first_line}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def read_text(path: Path, what: str = "file") -> str:
    """The UTF-8 text of a config or suite file, or a one-line `ConfigError` saying what to fix."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory; give the path of a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")  # a BOM from a Windows editor is harmless
    except UnicodeDecodeError as exc:
        byte, at = data[exc.start], exc.start
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte 0x{byte:02x} at offset {at}); save it as UTF-8"
        ) from None


def validate_model(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; raise a one-line `ConfigError` naming the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, data)) from None


def format_validation_error(exc: ValidationError, source: str, data: Any = None) -> str:
    """``source: path.in.file: what is wrong`` for the first error of ``exc``.

    With ``data``, the list item the error is in is named too when it has a ``name``
    (``fleet.yaml: endpoint 'gpu-a': endpoints.3.base_url: …``): on-call looks for the
    endpoint, not for its index.
    """
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    named = _named_item(data, first["loc"])
    if named is not None:
        where = f"{named}: {where}"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key; remove it or check its spelling"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {where}: {message}{more}"


def _named_item(data: Any, loc: tuple[int | str, ...]) -> str | None:
    """``endpoint 'x'``: the innermost named list item on ``loc`` in ``data``, if any."""
    found = None
    node, key = data, ""
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            node, key = node.get(part), part
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                kind = key[:-1] if key.endswith("s") and len(key) > 1 else "item"
                found = f"{kind} {one_line(node['name'])!r}"
        else:
            break
    return found


def load_model_file(model: type[M], path: str | Path, what: str = "file") -> M:
    """Read and validate a config file as ``model``: errors name the file and the key."""
    path = Path(path)
    return validate_model(model, read_mapping(path, what), str(path))
