"""Finding the host CLI: the same command a user runs (npm's node_modules/.bin), from where the script is."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolbridge.launch.host import find_cli


def test_find_cli_prefers_the_environment_then_the_nearest_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app" / "scripts"
    app.mkdir(parents=True)
    installed = tmp_path / "app" / "node_modules" / ".bin" / "toolbridge"
    installed.parent.mkdir(parents=True)
    installed.write_text("#!/bin/sh\n")
    monkeypatch.delenv("TOOLBRIDGE_CLI", raising=False)
    # An application that installed @toolbridge/server: npm's bin, found from a subdirectory.
    assert find_cli(app) == [str(installed)]
    monkeypatch.setenv("TOOLBRIDGE_CLI", "npx toolbridge")
    assert find_cli(app) == ["npx", "toolbridge"]
