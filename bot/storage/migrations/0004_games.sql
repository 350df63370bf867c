-- Display names of games, learnt from Steam's GetOwnedGames (include_appinfo) as they come by.
CREATE TABLE games (
    game_id    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO games (game_id, name, updated_at) VALUES ('minecraft', 'Minecraft', '1970-01-01T00:00:00.000000Z');
