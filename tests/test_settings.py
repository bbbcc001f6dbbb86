"""Settings profiles: embedded defaults, production hardening, Celery delivery settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def run_python(
    code: str, *, settings_module: str, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Load a settings profile in a fresh interpreter, with a clean environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "SECRET_KEY",
            "DEBUG",
            "DJANGO_SETTINGS_MODULE",
        }
    }
    clean.update(
        {"DJANGO_SETTINGS_MODULE": settings_module, "VAR_DIR": str(tmp_path / "var"), **env}
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "genemarket.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
    }


def test_check_deploy_is_clean_in_the_production_profile(tmp_path: Path) -> None:
    result = run_python(
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        settings_module="config.settings.production",
        tmp_path=tmp_path,
        **production_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    env.pop("SECRET_KEY")
    result = run_python(
        "import django; django.setup()",
        settings_module="config.settings.production",
        tmp_path=tmp_path,
        **env,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_failpoints(tmp_path: Path) -> None:
    """Failpoints pause workers for fault tests; a production worker must never have one."""
    result = run_python(
        "import django; django.setup()",
        settings_module="config.settings.production",
        tmp_path=tmp_path,
        FAILPOINTS="grant.headers_written",
        **production_env(tmp_path),
    )
    assert result.returncode != 0
    assert "FAILPOINTS (grant.headers_written)" in result.stderr


PRINT = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.SECRET_KEY[:4])"
)


@pytest.mark.parametrize(
    ("profile", "debug"),
    [
        ("config.settings.dev", "True"),
        ("config.settings.test", "False"),
    ],
)
def test_embedded_defaults_and_debug_only_in_dev(tmp_path: Path, profile: str, debug: str) -> None:
    result = run_python(PRINT, settings_module=profile, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    shown_debug, engine, broker, _ = result.stdout.split()
    assert shown_debug == debug
    assert engine == "django.db.backends.sqlite3"
    assert broker.startswith("filesystem://")


def test_production_debug_is_off(tmp_path: Path) -> None:
    result = run_python(
        PRINT,
        settings_module="config.settings.production",
        tmp_path=tmp_path,
        **production_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


def test_dev_generates_a_private_secret_key_once(tmp_path: Path) -> None:
    first = run_python(PRINT, settings_module="config.settings.dev", tmp_path=tmp_path)
    second = run_python(PRINT, settings_module="config.settings.dev", tmp_path=tmp_path)
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text()) >= 50
    assert first.stdout.split()[3] == second.stdout.split()[3]


def test_postgres_when_database_url_given(tmp_path: Path) -> None:
    result = run_python(
        PRINT,
        settings_module="config.settings.dev",
        tmp_path=tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/x",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
    )
    assert result.returncode == 0, result.stderr
    _, engine, broker, _ = result.stdout.split()
    assert engine == "django.db.backends.postgresql"
    assert broker == "redis://127.0.0.1:6379/3"


def test_celery_redelivers_tasks_of_killed_workers(settings) -> None:
    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_redis_visibility_timeout_outlasts_any_task(tmp_path: Path) -> None:
    """kombu #337: a task running longer than the visibility timeout runs twice."""
    result = run_python(
        "import django; django.setup(); from config.celery import app; "
        "print(app.conf.broker_transport_options['visibility_timeout'], app.conf.task_time_limit)",
        settings_module="config.settings.test",
        tmp_path=tmp_path,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
    )
    assert result.returncode == 0, result.stderr
    visibility, limit = map(int, result.stdout.split())
    assert visibility > limit


def test_web_settings_hold_no_key_material(tmp_path: Path) -> None:
    """Settings name where the worker finds its keys, never the keys themselves; with the
    worker-only variables present in the environment, no setting carries their values."""
    result = run_python(
        "import django; django.setup(); from django.conf import settings as s; "
        "values = repr({k: getattr(s, k) for k in dir(s) if k.isupper()}); "
        "print('LEAK' if ('pass-phrase-xyz' in values or '0xfeed' in values) else 'CLEAN')",
        settings_module="config.settings.production",
        tmp_path=tmp_path,
        ARCHIVE_KEY_PASSPHRASE="pass-phrase-xyz",
        OPERATOR_PRIVATE_KEY="0xfeed" + "0" * 60,
        **production_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CLEAN"


def test_the_public_rpc_url_never_defaults_to_the_private_one(tmp_path: Path) -> None:
    """Settlement review, finding 7: `GET /api/v1/chain` showed CHAIN_RPC_URL, which may
    carry a provider's API key, when CHAIN_PUBLIC_RPC_URL was not set."""
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(repr(settings.CHAIN_PUBLIC_RPC_URL))"
    )
    result = run_python(
        code,
        settings_module="config.settings.test",
        tmp_path=tmp_path,
        CHAIN_RPC_URL="https://mainnet.example/v3/PROVIDER-API-KEY",
    )
    assert result.returncode == 0, result.stderr
    assert "PROVIDER-API-KEY" not in result.stdout and result.stdout.strip() == "''"


def test_the_embedded_sqlite_database_logs_ahead_and_syncs_every_commit(tmp_path: Path) -> None:
    # Write-ahead logging: one sync per commit instead of the rollback journal's several
    # (an htsget ticket's audit entry is a commit), still durable (synchronous=FULL, 2).
    result = run_python(
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); "
        "print(c.execute('PRAGMA journal_mode').fetchone()[0], "
        "c.execute('PRAGMA synchronous').fetchone()[0])",
        settings_module="config.settings.dev",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "2"]
