-- Verified identities (issue 15). How each link was proven: 'none' (an id the member typed),
-- 'discord' (a Steam connection Discord reports verified), 'openid' (Sign in through Steam),
-- 'minecraft_code' (a code typed in game), 'admin' (an admin linked it: /admin link, the CLI
-- or an import). Existing links: admins' links 'admin', Minecraft code links
-- 'minecraft_code', the rest 'none'.
ALTER TABLE account_links ADD COLUMN verified_by TEXT NOT NULL DEFAULT 'none';
UPDATE account_links SET verified_by = CASE
    WHEN linked_by <> 'member' THEN 'admin'
    WHEN source = 'minecraft' AND verified = 1 THEN 'minecraft_code'
    ELSE 'none'
END;

-- The state of an OAuth or OpenID flow: random, single use, bound to the guild and member that
-- asked and to the language of the asking interaction, expiring after 10 minutes. Only its
-- SHA-256 is stored (the state travels in URLs); kept in the store so any process can finish a
-- flow. Pruned a day after it expires.
CREATE TABLE oauth_states (
    state_hash      TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,      -- 'discord', 'steam', 'linked_roles'
    guild_id        INTEGER,            -- NULL for the Linked Roles entry (no guild asked)
    discord_user_id INTEGER,            -- NULL for the Linked Roles entry (learnt at callback)
    language        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT
) WITHOUT ROWID;
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

-- Seen OpenID response nonces (Sign in through Steam): a nonce is accepted once within its
-- lifetime (an hour after the time it carries); kept until then, so a replayed positive
-- assertion is refused.
CREATE TABLE openid_nonces (
    endpoint   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (endpoint, nonce)
) WITHOUT ROWID;
CREATE INDEX openid_nonces_expiry ON openid_nonces (expires_at);

-- A member's Discord OAuth tokens (Login with Discord, Linked Roles), sealed with the instance
-- key (bot/vault): never stored in the clear. One row per Discord user: a role connection is
-- per member and application, not per guild. The role-connection values last sent, and when
-- the next push is due (NULL: nothing pending), drive the Linked Roles pusher.
CREATE TABLE discord_tokens (
    discord_user_id INTEGER PRIMARY KEY,
    access_token    TEXT NOT NULL,     -- sealed
    refresh_token   TEXT NOT NULL,     -- sealed
    scope           TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    locale          TEXT,              -- /users/@me's locale, for the Linked Roles pages
    username        TEXT,
    pushed_values   TEXT,              -- JSON of the role-connection metadata last sent
    pushed_at       TEXT,
    push_due_at     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX discord_tokens_due ON discord_tokens (push_due_at) WHERE push_due_at IS NOT NULL;

-- Why a member lost a link (a verified link of the same account by another member won),
-- shown in their /links for 30 days.
CREATE TABLE link_notices (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    discord_user_id INTEGER NOT NULL,
    source          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    reason          TEXT NOT NULL,     -- 'verified_by_other' (an unverified claim removed),
                                       -- 'verified_later' (another member verified it later)
    created_at      TEXT NOT NULL
);
CREATE INDEX link_notices_member ON link_notices (guild_id, discord_user_id);

-- /admin settings require_verified: leaderboards and milestones count only verified Steam links.
ALTER TABLE guilds ADD COLUMN require_verified INTEGER NOT NULL DEFAULT 0;
