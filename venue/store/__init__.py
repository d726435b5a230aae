"""The SQL store behind the journal: history, access records and the operator audit log.

- :mod:`venue.store.models`: the schema (SQLAlchemy 2), created by the Alembic
  migrations in ``migrations/``.
- :mod:`venue.store.project`: durable commands and events -> rows (pure).
- :mod:`venue.store.store`: :class:`Store`, written in batches on its own thread.
- :mod:`venue.store.catchup`: catching up from the journal after a crash.
- :mod:`venue.store.queries`: reads for the operator and reports.

SQLite under the data directory by default (``default_url``), PostgreSQL through
``postgresql+psycopg://...``. The engine never imports this package.
"""
from venue.store.store import Store, StoreError, default_url

__all__ = ["Store", "StoreError", "default_url"]
