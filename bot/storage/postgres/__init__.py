"""The PostgreSQL backend (issue 19): the scale-out path behind the same storage interface as
SQLite (bot/storage/interface.py), for several ``questlog run`` processes sharing one database
([database] url).

The migration runner (``migrations.py``) and the schema (bot/storage/migrations_pg/: the whole
schema at version 33 in one migration, checked against SQLite's by
tests/test_postgres_schema.py, plus the lease tables only PostgreSQL has), the engine
(``pg_engine.py``: a pool and a group-committing writer), the store (``store.py``) and its
parts (``pg_<module>.py``, twins of bot/storage/<module>.py), instance locks
(``pg_leader.py``), change notifications (``pg_listen.py``), ``questlog db copy``
(``copy.py``) and dumps (``dump.py``).
"""
