-- Presence playtime (issue 16). A session's idle time: the part of its duration the player
-- was idle (Discord's "idle" status) or, for game servers, away from the keyboard. Playtime
-- counts duration minus idle, for every source the same way.
ALTER TABLE sessions ADD COLUMN idle_seconds INTEGER NOT NULL DEFAULT 0;

-- Which game a Discord activity's application is (presence playtime lands under the same game
-- as Steam and BattleMetrics time when the names match): learnt once per application, kept.
-- Not member data: an application id and a game id.
CREATE TABLE presence_games (
    application_id TEXT PRIMARY KEY,
    game_id        TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) WITHOUT ROWID;
