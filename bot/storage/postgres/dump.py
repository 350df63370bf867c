"""Where a PostgreSQL URL points, said without its secrets, and a consistent dump of the
database with ``pg_dump``."""

from __future__ import annotations

import asyncio
import os
import shutil
import urllib.parse
from pathlib import Path

from bot.storage.engine import StorageError


def shown_url(url: str) -> str:
    """Where the URL points, for output: host, port and database only (never its user name,
    password or query, wherever a password may hide in it)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the PostgreSQL database"
    name = parts.path.lstrip("/").split("/")[0] or "(default database)"
    return f"postgresql://{host}{port}/{name}"


def _pg_dump() -> str:
    found = shutil.which("pg_dump")
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "pg_dump").exists():
            return str(folder / "pg_dump")
    raise StorageError(
        "pg_dump was not found: install PostgreSQL's client programs, or back up the database"
        " with your PostgreSQL server's own tools"
    )


def without_password(url: str) -> tuple[str, str | None]:
    """The URL without its password (in the user part or the query), and the password."""
    parts = urllib.parse.urlsplit(url)
    password = None if parts.password is None else urllib.parse.unquote(parts.password)
    query = []
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key == "password":
            password = value
        else:
            query.append((key, value))
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username is not None:
        netloc = urllib.parse.quote(urllib.parse.unquote(parts.username), safe="") + "@" + netloc
    bare = parts._replace(netloc=netloc, query=urllib.parse.urlencode(query))
    return urllib.parse.urlunsplit(bare), password


async def dump_database(url: str, target: Path) -> None:
    """``pg_dump --format=custom`` of the database at ``url`` into ``target`` (one snapshot,
    also while it is in use). The password goes to pg_dump in its environment, not its
    arguments (the process list); pg_dump's own error text is passed on without the URL."""
    program = _pg_dump()
    bare, password = without_password(url)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    process = await asyncio.create_subprocess_exec(
        program, "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={bare}",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    _, err = await process.communicate()
    if process.returncode != 0:
        partial.unlink(missing_ok=True)
        said = err.decode("utf-8", "replace").strip().replace(bare, shown_url(url))
        raise StorageError(f"pg_dump of {shown_url(url)} failed: {said[-500:]}")
    partial.replace(target)
