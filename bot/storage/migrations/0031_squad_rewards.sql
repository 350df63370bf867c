-- A reward may give a Squad admin group instead of, or besides, a role (issue 18): members
-- holding it are listed, by their Steam ids, in the reserved-slot list of the guild's
-- squad_admins endpoints. squad_permissions: Squad's permission names, comma-separated.
-- A reward without a role keeps role_id 0 (rewards.role_id is NOT NULL, and SQLite cannot
-- relax that without rebuilding a table reward_grants refers to); the code reads 0 as "none".
ALTER TABLE rewards ADD COLUMN squad_group TEXT;
ALTER TABLE rewards ADD COLUMN squad_permissions TEXT;

-- What each list served last looked like (its ETag) and since when: Last-Modified, and
-- If-Modified-Since answered 304, survive a restart.
CREATE TABLE squad_lists (
    endpoint_id INTEGER PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    etag        TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);
