-- Who made each link: 'member' (the member, with /link or a code typed in game), 'admin:<id>'
-- (an admin with /admin link), 'cli' (questlog link) or 'import' (questlog link --import).
-- Links made before this release were made by their members.
ALTER TABLE account_links ADD COLUMN linked_by TEXT NOT NULL DEFAULT 'member';
