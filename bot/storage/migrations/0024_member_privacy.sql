-- Privacy choices (issue 16). One row per member and guild who chose something other than the
-- defaults: 'collecting' 0 after /privacy off (no Steam sync of their links, their accounts'
-- webhook events withheld, no presence); 'presence' 1 or 0 after /privacy presence on|off,
-- NULL to follow the guild's presence_default. A row back at the defaults is deleted, so the
-- table holds only choices; /privacy delete removes the row unless it records an opt-out.
CREATE TABLE member_privacy (
    guild_id        INTEGER NOT NULL,
    discord_user_id INTEGER NOT NULL,
    collecting      INTEGER NOT NULL DEFAULT 1,
    presence        INTEGER,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (guild_id, discord_user_id)
) WITHOUT ROWID;

-- Whether presence is collected for members who did not choose (/admin settings
-- presence_default); off unless an admin turns it on.
ALTER TABLE guilds ADD COLUMN presence_default INTEGER NOT NULL DEFAULT 0;
