"""Settings come from the environment; a malformed value stops start-up with a message naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from voicegate import env

ROOT = Path(__file__).resolve().parent.parent


def _start(extra_env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("VOICEGATE_", "DATABASE_URL", "CELERY_"))}
    environment.update({"VOICEGATE_DATA_DIR": str(tmp_path), **extra_env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "name, value",
    [
        ("DATABASE_URL", "mysql-ish:/nowhere"),
        ("DEBUG", "perhaps"),
        ("VOICEGATE_MASTER_KEY", "too-short"),
        ("CELERY_BROKER_URL", "carrier-pigeon://coop"),
        ("VOICEGATE_MAX_BODY_BYTES", "lots"),
        ("ALLOWED_HOSTS", "a,,b"),
    ],
)
def test_malformed_setting_stops_start_up_naming_it(tmp_path, name, value):
    result = _start({name: value}, tmp_path)
    assert result.returncode != 0
    assert name in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


def test_no_settings_starts_with_development_keys_outside_the_repository(tmp_path):
    result = _start({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "DEVELOPMENT" in result.stderr
    key_file = tmp_path / "dev-secrets" / "master_key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert ROOT not in key_file.parents


def test_master_key_file_variable_is_read(tmp_path, monkeypatch):
    key_file = tmp_path / "master.key"
    key_file.write_text("ab" * 32)
    monkeypatch.delenv("VOICEGATE_MASTER_KEY", raising=False)
    monkeypatch.setenv("VOICEGATE_MASTER_KEY_FILE", str(key_file))
    assert env.env_key("VOICEGATE_MASTER_KEY", dev_file=tmp_path / "unused") == bytes.fromhex("ab" * 32)


def test_key_and_key_file_together_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEGATE_MASTER_KEY", "ab" * 32)
    monkeypatch.setenv("VOICEGATE_MASTER_KEY_FILE", str(tmp_path / "x"))
    with pytest.raises(ImproperlyConfigured, match="VOICEGATE_MASTER_KEY or VOICEGATE_MASTER_KEY_FILE"):
        env.env_key("VOICEGATE_MASTER_KEY", dev_file=tmp_path / "unused")


def test_unreadable_key_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("VOICEGATE_MASTER_KEY", raising=False)
    monkeypatch.setenv("VOICEGATE_MASTER_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(ImproperlyConfigured, match="VOICEGATE_MASTER_KEY_FILE"):
        env.env_key("VOICEGATE_MASTER_KEY", dev_file=tmp_path / "unused")


def test_postgres_url_is_parsed(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:pw@db.internal:5432/voicegate")
    config = env.env_database("DATABASE_URL", tmp_path / "x.sqlite3")
    assert (config["ENGINE"], config["HOST"], config["NAME"]) == ("django.db.backends.postgresql", "db.internal", "voicegate")


def test_database_url_error_does_not_leak_the_password(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "oracle://app:hunter2@db/x")
    with pytest.raises(ImproperlyConfigured) as error:
        env.env_database("DATABASE_URL", tmp_path / "x.sqlite3")
    assert "hunter2" not in str(error.value)
