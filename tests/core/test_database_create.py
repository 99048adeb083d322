"""`manage.py database_create` makes a fresh server's database, so the first migrate works."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def run_command(database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "database_create"], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": database_url},
                          capture_output=True, text=True, timeout=120)


def test_it_creates_the_postgresql_database_once_and_then_leaves_it(tmp_path):
    if connection.vendor != "postgresql":
        out = run_command(f"sqlite:///{tmp_path}/fresh.sqlite3")
        assert out.returncode == 0, out.stderr
        assert "nothing to do" in out.stdout
        return
    db = connection.settings_dict
    name = f"{db['NAME']}_create_{uuid.uuid4().hex[:8]}"
    url = (f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}"
           f":{db['PORT'] or 5432}/{name}")
    try:
        first, second = run_command(url), run_command(url)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"Created database {name}."
        assert second.stdout.strip() == f"Database {name} already exists."
    finally:
        import psycopg

        params = {**connection.get_connection_params(), "dbname": "postgres"}
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
