"""``flireo keys list`` prints one header per column (issue 14: it printed 6
headers over 7 columns, the organization column had none)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flireo.cli import app


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("┃│").replace("┃", "│").split("│")]


def test_keys_list_has_a_header_for_every_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLIREO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FLIREO_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLIREO_SECRET_KEY", raising=False)
    runner = CliRunner()
    created = runner.invoke(app, ["orgs", "create", "Acme"])
    assert created.exit_code == 0, created.output
    key = runner.invoke(app, ["keys", "create", "--name", "ci"])
    assert key.exit_code == 0, key.output
    listing = runner.invoke(app, ["keys", "list"])
    assert listing.exit_code == 0, listing.output
    lines = [line for line in listing.output.splitlines() if "│" in line or "┃" in line]
    header, rows = _cells(lines[0]), [_cells(line) for line in lines[1:]]
    assert header == ["id", "organization", "name", "prefix", "created", "last used", "state"]
    assert rows
    assert all(len(row) == len(header) for row in rows), rows
    names = {row[header.index("name")] for row in rows}
    assert "ci" in names
    assert {row[header.index("state")] for row in rows} == {"active"}
    assert all(row[header.index("prefix")].startswith("flk_") for row in rows)
