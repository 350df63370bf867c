from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, example_toml, load_config, parse_config, schema

ROOT = Path(__file__).resolve().parent.parent


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml", env={})
    assert config.web.host == "127.0.0.1"
    assert config.web.port == 8080
    assert config.database.path == "data/questlog.sqlite3"
    assert config.steam.api_base_url == "https://api.steampowered.com"
    assert config.battlemetrics.tolerance_seconds == 300
    assert config.web.rate_limit_per_minute == 0
    assert config.general.timezone == "UTC"
    assert config.source is None


def test_example_documents_every_key_with_its_default() -> None:
    text = (ROOT / "config-example.toml").read_text(encoding="utf-8")
    example = tomllib.loads(text)
    assert example == {section: dict(keys) for section, keys in schema().items()}
    parse_config(example, env={})
    # The file is what `questlog config example` prints, from the core's and the connectors'
    # declarations: regenerate it with that command after adding or changing a key.
    assert text == example_toml()


def test_environment_overrides_secrets(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[discord]\ntoken = "from-file"\n[steam]\napi_key = "file-key"\n')
    config = load_config(file, env={"DISCORD_TOKEN": "from-env", "STEAM_API_KEY": "env-key"})
    assert config.discord.token == "from-env"
    assert config.steam.api_key == "env-key"
    assert load_config(file, env={}).discord.token == "from-file"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[web]\nport = 70000\n", "web.port"),
        ('[web]\nport = "80"\n', "web.port"),
        ("[web]\nprot = 1\n", "web.prot"),
        ("[nonsense]\nx = 1\n", "[nonsense]"),
        ('[general]\ntimezone = "Mars/Olympus"\n', "general.timezone"),
        ('[web]\npublic_url = "example.org"\n', "web.public_url"),
        ("[battlemetrics]\ntolerance_seconds = 0\n", "battlemetrics.tolerance_seconds"),
        ("[web]\nrate_limit_per_minute = -1\n", "web.rate_limit_per_minute"),
        ("[web\n", "not valid TOML"),
        ("[general]\nmilestone_hours = []\n", "general.milestone_hours"),
        ("[general]\nmilestone_hours = [10, 10]\n", "general.milestone_hours"),
        ("[general]\nmilestone_hours = [0.5]\n", "general.milestone_hours"),
        ("[general]\nmilestone_hours = 10\n", "general.milestone_hours"),
        ("[steam]\nsync_interval_seconds = 30\n", "steam.sync_interval_seconds"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    assert key in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_reports_bad_config_in_one_line(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[web]\nport = 123456\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "status", "--config", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "web.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_milestone_hours_are_sorted() -> None:
    config = parse_config({"general": {"milestone_hours": [100, 10]}}, env={})
    assert config.general.milestone_hours == (10, 100)


def test_a_postgresql_url_from_the_file_or_the_environment_never_shown(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[database]\nurl = "postgresql://bot:hunter2@db/questlog"\n')
    config = load_config(file, env={})
    assert config.database.url == "postgresql://bot:hunter2@db/questlog"
    assert "hunter2" not in repr(config) and "hunter2" not in repr(config.database)
    env = {"QUESTLOG_DATABASE_URL": "postgres://bot@other/q"}
    assert load_config(file, env=env).database.url == "postgres://bot@other/q"
    assert load_config(tmp_path / "absent.toml", env={}).database.url == ""  # SQLite
    file.write_text('[database]\nurl = "mysql://bot:hunter2@db/questlog"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(file, env={})
    assert "database.url" in str(refused.value) and "hunter2" not in str(refused.value)


def test_postgresql_refuses_to_start_without_the_shared_key(tmp_path: Path) -> None:
    """Every process must open the tokens the others sealed: no key file per process."""
    file = tmp_path / "c.toml"
    file.write_text('[database]\nurl = "postgresql://questlog@127.0.0.1:9/none"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--web-only", "--config", str(file)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "security.secret_key: required with database.url" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # neither a SQLite file nor a key file was made
