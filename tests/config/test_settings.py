"""Settings fail loudly on bad environment values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_int

ROOT = Path(__file__).resolve().parents[2]


# What the test settings or the developer's shell may have set; production starts without.
UNSET = {"DEBUG", "DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE",
         "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
         "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
         "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS", "PRIVACY_ID_KEY"}
PRODUCTION_KEY = "k3y-" + "".join(chr(ord("a") + i % 26) for i in range(60))
PSEUDONYM_KEY = "pseudonyms-" + "".join(chr(ord("z") - i % 26) for i in range(40))


def clean_env(**env) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in UNSET}
    full.update(env)
    return full


def load_settings(code="print(s.DATABASES['default']['ENGINE'])", **env):
    return subprocess.run(
        [sys.executable, "-c", f"import config.settings as s; {code}"],
        cwd=ROOT, env=clean_env(**env), capture_output=True, text=True,
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    out = load_settings(DEBUG="false")
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in out.stderr


def test_it_refuses_a_short_secret_key_when_debug_is_off():
    out = load_settings(DEBUG="false", DJANGO_SECRET_KEY="x" * 40)
    assert "at least 50 characters" in out.stderr


def test_debug_is_off_unless_set():
    assert "DJANGO_SECRET_KEY must be set" in load_settings().stderr
    out = load_settings("print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE)",
                        DJANGO_SECRET_KEY=PRODUCTION_KEY, PRIVACY_ID_KEY=PSEUDONYM_KEY)
    assert out.stdout.split() == ["False", "True", "True"], out.stderr
    out = load_settings("print(s.DEBUG)", DEBUG="true")
    assert out.stdout.strip() == "True", out.stderr


def test_a_tls_proxy_is_trusted_only_when_configured():
    code = "print(getattr(s, 'SECURE_PROXY_SSL_HEADER', None), s.SECURE_SSL_REDIRECT)"
    out = load_settings(code, DJANGO_SECRET_KEY=PRODUCTION_KEY, PRIVACY_ID_KEY=PSEUDONYM_KEY)
    assert out.stdout.split() == ["None", "True"], out.stderr
    out = load_settings(code, DJANGO_SECRET_KEY=PRODUCTION_KEY, PRIVACY_ID_KEY=PSEUDONYM_KEY, SECURE_PROXY_SSL_HEADER="true",
                        SECURE_SSL_REDIRECT="false")
    assert out.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https') False", out.stderr


def test_check_deploy_is_clean_with_the_documented_production_settings():
    """README "Production": DJANGO_SECRET_KEY, ALLOWED_HOSTS, and nothing else security-wise."""
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True,
        env=clean_env(DJANGO_SECRET_KEY=PRODUCTION_KEY, PRIVACY_ID_KEY=PSEUDONYM_KEY, ALLOWED_HOSTS="campaign.example.com"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "System check identified no issues" in out.stdout


def test_it_refuses_a_malformed_boolean():
    out = load_settings(DEBUG="maybe")
    assert "DEBUG must be a boolean" in out.stderr


def test_it_refuses_to_start_without_a_pseudonym_key_when_debug_is_off():
    out = load_settings(DEBUG="false", DJANGO_SECRET_KEY=PRODUCTION_KEY)
    assert out.returncode != 0
    assert "PRIVACY_ID_KEY must be set" in out.stderr
    out = load_settings(DEBUG="false", DJANGO_SECRET_KEY=PRODUCTION_KEY, PRIVACY_ID_KEY="short")
    assert "PRIVACY_ID_KEY must be at least 32 characters" in out.stderr


def test_it_starts_in_production_mode_with_a_proper_key_and_postgres_url():
    out = load_settings(DEBUG="false", DJANGO_SECRET_KEY=PRODUCTION_KEY, PRIVACY_ID_KEY=PSEUDONYM_KEY,
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
        "celery [('modelling.tasks.behaviour_model_train_task', 'training'),"
        " ('modelling.tasks.response_model_train_task', 'training'),"
        " ('modelling.tasks.segmentation_run_task', 'training'),"
        " ('modelling.tasks.uplift_model_train_task', 'training')]")
