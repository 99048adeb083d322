"""Create the configured database itself, so that a fresh server's first `migrate` works.

PostgreSQL: connect to the server's maintenance database (``postgres``) with
the same credentials and ``CREATE DATABASE`` when it is missing; the role
needs CREATEDB (or create it once by hand: ``createdb -O <user> <name>``).
SQLite creates its file on first connection, so there is nothing to do.
"""

from __future__ import annotations

from django.db import connections


def database_create(*, alias: str = "default") -> str:
    """Make sure the database of ``alias`` exists; return what was done, in words."""
    conn = connections[alias]
    name = conn.settings_dict["NAME"]
    if conn.vendor == "sqlite":
        return f"SQLite creates {name} on first use; nothing to do."
    if conn.vendor != "postgresql":
        raise ValueError(f"cannot create a {conn.vendor} database")
    import psycopg
    from psycopg import sql

    params = conn.get_connection_params()
    params["dbname"] = "postgres"
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return f"Database {name} already exists."
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"Created database {name}."
