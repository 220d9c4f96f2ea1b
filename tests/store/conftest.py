"""Database fixtures: every store test runs on SQLite, and on PostgreSQL when
TRIAGE_TEST_POSTGRES_URL is set (skipped otherwise).

PostgreSQL isolation: each test gets a fresh schema (`search_path` in the URL), dropped after the
test, so the suite can run again and again on the same database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from triage.store.db import SessionFactory, create_all, make_engine, make_sessionmaker

POSTGRES_ENV = "TRIAGE_TEST_POSTGRES_URL"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _with_search_path(base: str, schema: str) -> str:
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """The URL of an empty database on the backend of this parametrization."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/triage.db"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield _with_search_path(base, schema)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture()
def backend(db_url: str) -> str:
    """ "sqlite" or "postgresql"."""
    return make_url(db_url).get_backend_name()


@pytest.fixture()
async def db_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with every table created."""
    engine = make_engine(db_url)
    await create_all(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture()
def sessions(db_engine: AsyncEngine) -> SessionFactory:
    """Sessions on that database."""
    return make_sessionmaker(db_engine)
