"""Playtime in SQLite: current totals per player and game, samples for charts and period
leaderboards, milestones, and the names of games."""

from __future__ import annotations

import sqlite3


def remember_game_name(conn: sqlite3.Connection, game_id: str, name: str, now_text: str) -> None:
    conn.execute(
        "INSERT INTO games (game_id, name, updated_at) VALUES (?, ?, ?) ON CONFLICT (game_id) DO UPDATE"
        " SET name = excluded.name, updated_at = excluded.updated_at",
        (game_id, name[:200], now_text),
    )
