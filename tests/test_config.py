from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import load_settings
from shoplake.errors import ConfigError


def test_paths_in_the_file_are_relative_to_it_and_options_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "proj"
    (project / "contracts").mkdir(parents=True)
    (project / "shoplake.yml").write_text("landing: drop\nlake: /data/lake\nmemory_limit: 2GB\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(project / "shoplake.yml", lake=Path("here/lake"))
    assert settings.landing == project / "drop"
    assert settings.lake == Path("here/lake")
    assert settings.memory_limit == "2GB"
    assert settings.contracts == [project / "contracts"]
    assert settings.archive_dir == project / "archive"


def test_the_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shoplake.yml").write_text("engine: duckdb\nlake: lake\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOPLAKE_LAKE", "/elsewhere/lake")
    assert load_settings().lake == Path("/elsewhere/lake")


@pytest.mark.parametrize(
    ("text", "message"),
    [("engine: spork\n", "unknown engine 'spork'"), ("lakes: x\n", "lakes"), ("- a\n", "expected a mapping")],
)
def test_bad_settings_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "shoplake.yml").write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(tmp_path / "shoplake.yml")
    assert caught.value.exit_code == 2
