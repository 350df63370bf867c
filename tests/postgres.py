"""A throwaway PostgreSQL cluster for the tests: ``initdb`` in a temporary folder, ``pg_ctl``
on a free local port (TCP on 127.0.0.1 only, trust authentication, fsync off), stopped and
removed at the end. Run as root (CI), the server runs as the unprivileged ``nobody``: PostgreSQL
refuses to run as root.

Without PostgreSQL's server programs the PostgreSQL tests are skipped with one line saying
how to get them, unless ``QUESTLOG_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns the
skip into a failure: CI must never skip them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REQUIRED = "QUESTLOG_REQUIRE_POSTGRES"
MISSING = (
    "PostgreSQL tests skipped: no PostgreSQL server programs (initdb, pg_ctl) found; install"
    " them (Debian: apt-get install postgresql) or set QUESTLOG_POSTGRES_BIN to their folder"
)


class Unavailable(Exception):
    """No cluster can be started here (the reason is the message)."""


@dataclass
class Cluster:
    folder: Path
    bindir: Path
    port: int
    user: str | None  # the OS user the server runs as (None: this process's)

    @property
    def url(self) -> str:
        return f"postgresql://questlog@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://questlog@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(self.bindir / program, args, self.user)


def find_bindir() -> Path | None:
    given = os.environ.get("QUESTLOG_POSTGRES_BIN")
    candidates = [given] if given else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)  # Debian
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(
    program: Path, args: tuple[str, ...], user: str | None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(program), *args],
        capture_output=True,
        text=True,
        timeout=120,
        user=user,
        cwd=tempfile.gettempdir(),  # a folder the server's user may enter
        env={**os.environ, "LC_ALL": "C"},
    )
    if result.returncode != 0:
        raise Unavailable(
            f"{program.name} failed ({result.returncode}): {result.stderr.strip()[-800:]}"
        )
    return result


def start_cluster() -> Cluster:
    """Start a new cluster or raise Unavailable."""
    bindir = find_bindir()
    if bindir is None:
        raise Unavailable(MISSING)
    user = "nobody" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="questlog-pg-"))
    if user is not None:
        shutil.chown(folder, user)
    data = folder / "data"
    cluster = Cluster(folder, bindir, _free_port(), user)
    try:
        cluster._run(
            "initdb", "-D", str(data), "-U", "questlog", "--auth=trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {cluster.port} -c listen_addresses=127.0.0.1 -k {folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=100"
        )
        cluster._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "server.log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip
    except BaseException:
        log = folder / "server.log"
        detail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        if detail:
            raise Unavailable(f"the PostgreSQL server did not start: {detail}") from None
        raise
    return cluster
