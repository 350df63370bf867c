"""One server per SQLite file.

SQLite has one writer: two ``questlog run`` processes on the same file would each run the
feed poster, the action worker and the Steam sync, posting every event twice and sending every
action twice. So the server holds an exclusive advisory lock (``flock``) on ``<database>.lock``
for as long as it runs; a second server on the same file finds it held and refuses to start,
naming the process that holds it. One-shot CLI commands (``questlog status``, ``endpoint``,
``backup``, ...) never take it: they still work beside the running server. The kernel drops the
lock when its process ends, however it ends, so a crash never leaves a stale one behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bot.storage.engine import StorageError


class ServerRunning(StorageError):
    """Another ``questlog run`` serves the same SQLite file."""


class ServerLock:
    """The held lock; :meth:`release` (or the process ending) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock


def lock_path(database: str | Path) -> Path:
    return Path(f"{database}.lock")


def hold_server_lock(database: str | Path) -> ServerLock:
    """Take the server lock of the SQLite file at ``database`` or raise ServerRunning."""
    path = lock_path(Path(database).resolve())  # one lock whatever path leads to the file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise ServerRunning(
            f"another `questlog run`{who} is serving {database}: SQLite allows one server per"
            " database file, so stop that one first (other questlog commands work beside it)"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return ServerLock(path, fd)


class ProcessLock:
    """The instance lock on SQLite: the server lock makes this process the only server of the
    file, so it holds every instance lock (bot/storage/interface.py, InstanceLock)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._held = False

    async def acquire(self) -> bool:
        self._held = True
        return True

    async def held(self) -> bool:
        return self._held

    async def release(self) -> None:
        self._held = False
