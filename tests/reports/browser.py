"""Headless Chromium, as a real browser to open the HTML report in."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Skip marker for hosts without it; CI installs Debian's `chromium`.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]
    """Console messages the page logged (errors, CSP violations, uncaught exceptions)."""


def open_page(html_file: Path, tmp_path: Path) -> Page:
    """Load ``html_file``, let its scripts run, and return the DOM and the console lines."""
    result = subprocess.run(
        [*_base(tmp_path), "--dump-dom", html_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return Page(result.stdout, console)


def screenshot(html_file: Path, png: Path, tmp_path: Path) -> None:
    subprocess.run(
        [*_base(tmp_path), f"--screenshot={png}", "--window-size=1400,2000", html_file.as_uri()],
        capture_output=True,
        timeout=180,
        check=True,
    )


def _base(tmp_path: Path) -> list[str]:
    return [
        CHROMIUM or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        # Plotly draws after load; virtual time lets every script finish before the dump.
        "--virtual-time-budget=10000",
    ]
