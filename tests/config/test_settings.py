"""Settings fail loudly on bad environment values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_int

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env):
    full = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SECRET_KEY",
                                                             "DATABASE_URL"}}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DATABASES['default']['ENGINE'])"],
        cwd=ROOT, env=full, capture_output=True, text=True,
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    out = load_settings(DEBUG="false")
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in out.stderr


def test_it_refuses_a_short_secret_key_when_debug_is_off():
    out = load_settings(DEBUG="false", DJANGO_SECRET_KEY="short")
    assert "at least 32 characters" in out.stderr


def test_it_refuses_a_malformed_boolean():
    out = load_settings(DEBUG="maybe")
    assert "DEBUG must be a boolean" in out.stderr


def test_it_starts_in_production_mode_with_a_proper_key_and_postgres_url():
    out = load_settings(DEBUG="false", DJANGO_SECRET_KEY="x" * 40,
                        DATABASE_URL="postgres://u:p@db.example:5433/app")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "django.db.backends.postgresql"


def test_database_url_parsing():
    pg = database_from_url("postgres://user:p%40ss@host:6543/name?sslmode=require", base_dir="/b")
    assert (pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"], pg["NAME"]) == (
        "user", "p@ss", "host", "6543", "name")
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert database_from_url("sqlite:///var/x.db", base_dir="/b")["NAME"] == "/b/var/x.db"
    assert database_from_url("sqlite:////tmp/x.db", base_dir="/b")["NAME"] == "/tmp/x.db"
    with pytest.raises(ImproperlyConfigured, match="scheme 'mysql'"):
        database_from_url("mysql://x/y", base_dir="/b")


def test_env_helpers_name_the_variable(monkeypatch):
    monkeypatch.setenv("WORKERS", "two")
    with pytest.raises(ImproperlyConfigured, match="WORKERS must be an integer"):
        env_int("WORKERS", 1)
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG", False) is True


def test_training_tasks_go_to_their_own_queue_only_when_one_is_named():
    show = ("import config.settings as s; "
            "print(s.CELERY_TASK_DEFAULT_QUEUE, sorted((t, r['queue']) for t, r in s.CELERY_TASK_ROUTES.items()))")
    env = {k: v for k, v in os.environ.items()
           if k not in {"DEBUG", "DATABASE_URL", "CELERY_TRAINING_QUEUE", "CELERY_TASK_DEFAULT_QUEUE"}}
    plain = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert plain.stdout.strip() == "celery []"
    routed = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "CELERY_TRAINING_QUEUE": "training"})
    assert routed.stdout.strip() == (
        "celery [('modelling.tasks.response_model_train_task', 'training'),"
        " ('modelling.tasks.uplift_model_train_task', 'training')]")
