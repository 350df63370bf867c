"""The Steam connector's side of the one ingest path: what the sync observes, identified and
normalized."""

from __future__ import annotations

import pytest

from connectors.base import LinkInfo, SchemaError
from connectors.steam.connector import SteamConnector, rarity

SID = "76561198000000001"
AT = "2025-03-01T12:00:00.000000Z"
LINK = LinkInfo(42, SID, "Alex")


def test_played_today_is_one_line_per_player_game_and_day() -> None:
    raw = {"type": "played", "steam_id": SID, "app_id": 219990, "game_name": "Grim Dawn",
           "today": 3000, "total": 90000, "day": "2025-03-01", "at": AT}  # fmt: skip
    steam = SteamConnector()
    event = steam.normalize(raw, LINK)
    assert event is not None
    assert event.title == "Alex played Grim Dawn today: 50 min"
    assert event.update_key == f"steam.game_played:{SID}:219990:2025-03-01"
    assert (event.actor_user_id, event.actor_name) == (42, "Alex")
    # A new total is a new observation (it edits the day's line); the same total is not.
    assert steam.dedupe_key(raw) != steam.dedupe_key({**raw, "total": 90600})
    assert steam.dedupe_key(raw) == steam.dedupe_key({**raw, "today": 1})


def test_achievements_sessions_and_names() -> None:
    steam = SteamConnector()
    unlock = {"type": "achievement", "steam_id": SID, "app_id": 1, "game_name": None,
              "api_name": "ACH_X", "info": {"name": "Slayer"}, "percent": 2.3, "at": AT}  # fmt: skip
    event = steam.normalize(unlock, LinkInfo(7, SID, None))
    assert event is not None and event.title == "A linked player unlocked Slayer in app 1"
    assert event.payload["rarity"] == "rare: 2.3 % of players"
    ended = {"type": "session.ended", "steam_id": SID, "app_id": 1, "game_name": "G",
             "seconds": 3900, "started": AT, "at": AT}  # fmt: skip
    event = steam.normalize(ended, LINK)
    assert event is not None and event.title == "Alex played G for 1 h 5 min"
    assert steam.dedupe_key(ended) != steam.dedupe_key({**ended, "type": "session.started"})
    with pytest.raises(SchemaError):
        steam.dedupe_key({**ended, "type": "mystery"})


def test_rarity_wording() -> None:
    assert rarity(None) is None
    assert rarity(0.04) == "rare: 0.04 % of players"
    assert rarity(41.0) == "41.0 % of players"
