"""Game server consoles in SQLite (``endpoint_consoles``): an endpoint's RCON settings, and
the in-game announcements of milestones and rewards queued on the action outbox in the
transaction that decides them (at most once: console commands are not idempotent)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.clock import from_iso, to_iso
from bot.storage.actions import queue_action
from bot.storage.engine import Database
from bot.storage.outbox import feed_language
from bot.storage.records import ConsoleSettings
from connectors.base import Action, ActivityEvent, Connector, SchemaError
from connectors.minecraft.connector import MinecraftConnector
from connectors.squad.connector import SquadConnector

log = logging.getLogger(__name__)
_COLUMNS = "endpoint_id, game, host, port, password, announce, created_at, updated_at"
#: Validates what is queued (the payload models of the console actions).
_MINECRAFT, _SQUAD = MinecraftConnector(), SquadConnector()
#: The feed events announced in game, when the member is linked in the guild.
ANNOUNCED = frozenset({"playtime.milestone", "reward.granted"})

#: Writes an event as one plain line in a language: (event, (chosen, server's)) -> text.
LineWriter = Callable[[Mapping[str, Any], tuple[str | None, str | None]], str | None]


def pause_key(endpoint_id: int) -> str:
    """The outbox key a console's actions wait on together (a refused password pauses all)."""
    return f"console:{endpoint_id}"


def _settings(row: sqlite3.Row | tuple[Any, ...]) -> ConsoleSettings:
    endpoint_id, game, host, port, password, announce, created, updated = row
    return ConsoleSettings(
        endpoint_id=endpoint_id, game=game, host=host, port=port, sealed_password=password,
        announce=bool(announce), created_at=from_iso(created), updated_at=from_iso(updated),
    )  # fmt: skip


def announce_in_game(
    conn: sqlite3.Connection,
    guild_id: int,
    events: Sequence[ActivityEvent],
    write_line: LineWriter,
    now: datetime,
) -> list[int]:
    """Queue, for every announcing console of the guild's enabled endpoints, one line per event
    of a linked member (a milestone, a reward earned by playing), written in the guild's feed
    language; the queued action ids."""
    wanted = [e for e in events if e.type in ANNOUNCED and e.actor_user_id is not None]
    if not wanted:
        return []
    consoles = conn.execute(
        "SELECT c.endpoint_id, c.game FROM endpoint_consoles c JOIN endpoints e"
        " ON e.id = c.endpoint_id WHERE e.guild_id = ? AND e.disabled_at IS NULL"
        " AND c.announce = 1 ORDER BY c.endpoint_id",
        (guild_id,),
    ).fetchall()
    if not consoles:
        return []
    language = feed_language(conn, guild_id)
    queued = []
    for event in wanted:
        line = write_line(
            {"type": event.type, "payload": event.payload, "actor_name": event.actor_name,
             "actor_external_id": event.actor_external_id},
            language,
        )  # fmt: skip
        if not line:
            continue
        for endpoint_id, game in consoles:
            connector, action = _announcement(endpoint_id, game, line)
            key, user = pause_key(endpoint_id), event.actor_user_id
            try:
                action_id = queue_action(
                    conn, connector, action, guild_id=guild_id, pause_key=key, now=now, user_id=user
                )
            except SchemaError as exc:  # a line its model refuses is not said; the event stays
                log.warning("in-game line for console %s not queued: %s", endpoint_id, exc)
            else:
                queued.append(action_id)
    return queued


def _announcement(endpoint_id: int, game: str, line: str) -> tuple[Connector, Action]:
    """A line said to everyone on the server: ``tellraw @a`` on Minecraft, ``AdminBroadcast``
    on Squad. (Both cut a line to what their chat shows; the models take at most 1,000.)"""
    line = line[:1000]
    if game == "minecraft":
        payload = {"endpoint_id": endpoint_id, "template": "tellraw", "text": line}
        return _MINECRAFT, Action("run_command", payload)
    return _SQUAD, Action("broadcast", {"endpoint_id": endpoint_id, "message": line})


class SqliteConsoles:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def set(
        self,
        endpoint_id: int,
        *,
        game: str,
        host: str,
        port: int,
        sealed_password: str,
        announce: bool,
        now: datetime,
    ) -> ConsoleSettings:
        """Save the endpoint's console (replacing what it had); a console paused on its
        settings is probed again at once."""
        stamp = to_iso(now)

        def op(conn: sqlite3.Connection) -> ConsoleSettings:
            conn.execute(
                f"INSERT INTO endpoint_consoles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (endpoint_id) DO UPDATE SET game = excluded.game,"
                " host = excluded.host, port = excluded.port, password = excluded.password,"
                " announce = excluded.announce, updated_at = excluded.updated_at",
                (endpoint_id, game, host, port, sealed_password, int(announce), stamp, stamp),
            )
            conn.execute(
                "UPDATE action_pauses SET next_probe_at = ? WHERE pause_key = ?"
                " AND guild_id = (SELECT guild_id FROM endpoints WHERE id = ?)",
                (stamp, pause_key(endpoint_id), endpoint_id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM endpoint_consoles WHERE endpoint_id = ?", (endpoint_id,)
            ).fetchone()
            return _settings(row)

        return await self._db.write(op)

    async def get(self, endpoint_id: int) -> ConsoleSettings | None:
        """The console of an enabled endpoint, None when it has none or is disabled."""
        row = await self._db.fetchone(
            f"SELECT {', '.join('c.' + c for c in _COLUMNS.split(', '))}"
            " FROM endpoint_consoles c JOIN endpoints e ON e.id = c.endpoint_id"
            " WHERE c.endpoint_id = ? AND e.disabled_at IS NULL",
            (endpoint_id,),
        )
        return _settings(row) if row else None

    async def list(self, guild_id: int | None = None) -> list[ConsoleSettings]:
        columns = ", ".join("c." + c for c in _COLUMNS.split(", "))
        where = "" if guild_id is None else " WHERE e.guild_id = ?"
        rows = await self._db.fetchall(
            f"SELECT {columns} FROM endpoint_consoles c JOIN endpoints e ON e.id = c.endpoint_id"
            f"{where} ORDER BY c.endpoint_id",
            () if guild_id is None else (guild_id,),
        )
        return [_settings(r) for r in rows]

    async def remove(self, endpoint_id: int) -> bool:
        """Forget the endpoint's console; whether it had one. Actions already queued for it
        fail when their turn comes (no settings any more)."""
        return bool(
            await self._db.write(
                lambda c: (
                    c.execute(
                        "DELETE FROM endpoint_consoles WHERE endpoint_id = ?", (endpoint_id,)
                    ).rowcount
                )
            )
        )
