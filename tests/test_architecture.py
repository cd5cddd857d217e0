"""Rules that cannot rot (STYLE.md points 3, 11, 19): the import contracts, a light CLI entry
point, and small modules. Each check runs in its own interpreter or reads the source, so what
other tests imported cannot hide a violation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import typer.main

from canary.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "canary"

#: Packages `canary --help` must never load: the store, the statistics and the model stack.
HEAVY = ("sqlalchemy", "numpy", "scipy", "torch", "transformers")
#: The canary modules the CLI entry point may load: the command modules and the ground floor.
LIGHT_CANARY = ("canary.cli", "canary.errors", "canary.sanitize", "canary.resources")
#: STYLE.md point 11: question any module past this many lines.
MAX_MODULE_LINES = 400


#: `lint-imports` in this interpreter (the console script may be missing from PATH).
LINT_IMPORTS = "from importlinter.cli import lint_imports_command as c; c()"


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_import_contracts_hold() -> None:
    """The layers, no cycles, SQL only in the store, torch only in reference and sim."""
    done = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_importing_the_cli_loads_no_heavy_package() -> None:
    loaded = _python(
        f"import sys, canary.cli.main; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert loaded.strip() == "[]"


def test_importing_the_cli_loads_only_the_command_modules_and_the_ground_floor() -> None:
    """A command imports its library code inside the function, so `--help` never pays for it."""
    loaded = json.loads(
        _python(
            "import json, sys, canary.cli.main; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('canary.'))))"
        )
    )
    heavy = [m for m in loaded if not m.startswith(LIGHT_CANARY)]
    assert heavy == [], f"importing canary.cli.main loads {heavy}; import them inside the command"


def test_help_lists_every_command_and_each_command_has_help() -> None:
    """Lazy imports must not cost a command its place in `canary --help`."""
    root = typer.main.get_command(app)
    out = _python("import sys; sys.argv[1:] = ['--help']; import canary.cli.main as m; m.main()")
    listed = set(re.findall(r"^│ (\S+) ", out, flags=re.M))
    commands: list[tuple[str, ...]] = []
    for name, command in root.commands.items():
        assert name in listed, f"`canary --help` does not list {name}"
        subcommands = getattr(command, "commands", {})
        commands += [(name, sub) for sub in subcommands] or [(name,)]
    for path in commands:
        result = _cli_help(path)
        assert "Usage:" in result and "--help" in result, f"canary {' '.join(path)} --help"


def _cli_help(path: tuple[str, ...]) -> str:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _module_lines() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_module_is_over_400_lines() -> None:
    lines = _module_lines()
    assert "canary/cli/main.py" in lines  # the check reads the package itself
    long = {path: n for path, n in lines.items() if n > MAX_MODULE_LINES}
    assert long == {}, f"split these modules (one reason to change each): {long}"
