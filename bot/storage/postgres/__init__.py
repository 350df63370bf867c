"""The PostgreSQL backend (issue 19): the scale-out path behind the same storage interface as
SQLite (bot/storage/interface.py), for several ``questlog run`` processes sharing one database.

Built in slices. Here so far: the migration runner (``migrations.py``) and the schema
(bot/storage/migrations_pg/: the whole schema at version 33 in one migration, checked against
SQLite's by tests/test_postgres_schema.py). Not yet selectable in the configuration; until it
is, ``[database] path`` (SQLite) is the only backend.
"""
