"""The PostgreSQL backend (issue 19): the scale-out path behind the same storage interface as
SQLite (bot/storage/interface.py), for several ``questlog run`` processes sharing one database.

Built in slices. Here so far: the migration runner (``migrations.py``) and the schema
(bot/storage/migrations_pg/: the whole schema at version 33 in one migration, checked against
SQLite's by tests/test_postgres_schema.py), the engine (``pg_engine.py``: a pool and a
group-committing writer), ``questlog db copy`` (``copy.py``) and the store (``store.py``) with
the parts built so far in ``PostgresStore.PARTS``. Not selectable in the configuration until
every part is there; until then ``[database] path`` (SQLite) is the only backend.
"""
