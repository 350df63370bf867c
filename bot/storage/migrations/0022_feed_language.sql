-- The feed in each server's language. Titles of activity events are written when a batch is
-- made, from the event's type and payload, in the guild's feed language: 'ru' or 'en' as chosen
-- with /feed language, or NULL for the Discord server's primary language (preferred_locale, as
-- the bot last saw it) when Questlog speaks it, else English. Events stored before this release
-- keep the title they were stored with: the first id written in a language is kept in meta.
ALTER TABLE guilds ADD COLUMN feed_language TEXT;
ALTER TABLE guilds ADD COLUMN preferred_locale TEXT;
INSERT INTO meta (key, value)
SELECT 'titles_rendered_from', CAST(coalesce(max(id), 0) + 1 AS TEXT) FROM activity_events;
