"""The console ships whole in the wheel and loads nothing from another origin."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from flireo.console import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "flireo"


def test_every_console_asset_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["flireo"]
    files = [p.relative_to(PACKAGE).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert "console/static/index.html" in files
    assert "console/static/vendor/swagger-ui/swagger-ui-bundle.js" in files
    # a setuptools glob's "*" stays within one directory
    missing = [
        f for f in files if not any(fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)
    ]
    assert missing == []


def test_vendored_swagger_ui_keeps_its_licence() -> None:
    vendor = STATIC_DIR / "vendor" / "swagger-ui"
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert (vendor / "NOTICE").read_text().startswith("swagger-ui")


def test_the_shell_and_modules_name_no_other_origin() -> None:
    url = re.compile(r"""(?:src|href|import|from|url)\s*\(?\s*["'`]?(?:https?:)?//""", re.I)
    for path in STATIC_DIR.glob("*"):
        if path.suffix in (".html", ".js", ".css"):
            assert not url.search(path.read_text()), f"{path.name} loads from another origin"
