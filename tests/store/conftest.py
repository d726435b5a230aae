"""Store fixtures: every store test runs on SQLite and on the real PostgreSQL
(127.0.0.1:5432, database ``test``), each PostgreSQL test in a schema of its own."""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_schema_url() -> tuple[str, str]:
    schema = f"store_{uuid.uuid4().hex[:12]}"
    return schema, f"{PG_BASE}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema, url = pg_schema_url()
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_urls(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, str]]:
    """Two empty stores of the same kind: (url, url of a second one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/a.sqlite", f"sqlite:///{tmp_path}/b.sqlite"
        return
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    made = []
    try:
        urls = []
        for _ in range(2):
            schema, url = pg_schema_url()
            with admin.connect() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            made.append(schema)
            urls.append(url)
        yield urls[0], urls[1]
    finally:
        with admin.connect() as c:
            for schema in made:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
