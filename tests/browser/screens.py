"""Screenshots of the console's pages, taken by the browser tests.

Every run takes them (so the code that takes them is always exercised) into a tmp dir;
with `TENIN_SCREENSHOTS=1` they go to docs/console/<name>.png instead, the pictures that
docs/console.md and the README show. File names are fixed per page.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Shoot = Callable[..., Path]  # shoot(page, name, full_page=True): the `shoot` fixture


def screenshot_dir(tmp_dir: Path) -> Path:
    """docs/console/ when TENIN_SCREENSHOTS=1, else `tmp_dir`."""
    if os.environ.get("TENIN_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS
    return tmp_dir


def take_screenshot(page: Page, name: str, directory: Path, full_page: bool = True) -> Path:
    """`<directory>/<name>.png`: the whole page (or the window), caret hidden, no animation."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, caret="hide", animations="disabled")
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return path
