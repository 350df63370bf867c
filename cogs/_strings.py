"""Every text the cogs show to users, in one place (a later issue adds Russian beside it)."""

FEED_GROUP = "The activity feed: where Questlog posts what happens on your game servers"
FEED_CHANNEL = "Post this server's activity feed to a channel"
FEED_CHANNEL_ARG = "The text channel for the feed"
FEED_STATUS = "Show the feed: channel, waiting, failed and posted events"
FEED_TEST = "Post a sample event to the feed channel"

FEED_MISSING_PERMISSIONS = (
    "I can't post the feed in {channel}: I am missing {missing} there. "
    "Give me those permissions in that channel (or pick another channel) and try again."
)
FEED_CHANNEL_SET = (
    "Done: the activity feed now goes to {channel}. Try `/feed test` to see a sample."
)
FEED_NO_CHANNEL = "No feed channel is set yet. Pick one with `/feed channel`."
FEED_TEST_QUEUED = "A sample event is on its way to {channel}."
FEED_STATUS_LINES = (
    "**Channel:** {channel}\n"
    "**Waiting to post:** {pending}\n"
    "**Posted:** {sent}\n"
    "**Failed:** {failed}\n"
    "**Expired:** {expired}"
)
FEED_CHANNEL_BACKFILL_ARG = (
    "Also post events of the last hours stored before the feed had a channel (0-72, default 0)"
)
FEED_CHANNEL_BACKFILLED = (
    "\nStored events of the last {hours} h posted there too, oldest first: {count}."
)
FEED_CHANNEL_NOT_POSTED = (
    "\nEvents stored before the feed had a channel, not posted: {count}. Run `/feed channel` "
    "again with `backfill` (hours, at most 72; at most 500 events) to post the recent ones."
)
FEED_CHANNEL_RESUMED = "\nPosting there was paused; it resumes now, oldest event first."
FEED_CHANNEL_MOVED = (
    "\nEvents still waiting for {old}: {count}. They are posted here instead, oldest first."
)
FEED_CHANNEL_MAYBE_POSTED = (
    "\n⚠️ Messages whose delivery to {old} was never confirmed (Discord's answer was lost): "
    "{count}. They may already show there, and are posted in {channel} too."
)
FEED_STATUS_PAUSED = "\n**Posting is paused** (since {since}): {reason}.\n{next}"
FEED_STATUS_PROBE = (
    "Nothing is lost: the events wait in order. Questlog tries again by itself {when} and "
    "resumes as soon as Discord accepts; once you have fixed it, `/feed channel` resumes at once."
)
FEED_STATUS_NO_PROBE = (
    "Nothing is lost: the events wait in order. Pick a channel with `/feed channel` and they "
    "are posted there, oldest first."
)
FEED_STATUS_FAILURES = "\n**Events Discord refused** (latest first):\n{lines}"
FEED_STATUS_FAILURE_LINE = "• {title}: {reason}"
FEED_STATUS_ERROR = "\n**Last error:** {error}"

WEBHOOK_GROUP = "Webhook endpoints that game servers and scripts send activity to"
WEBHOOK_CREATE = "Create an endpoint and show its URLs and secret (shown once)"
WEBHOOK_CREATE_KIND = "What sends to it (start typing: playtime, minecraft, custom, ...)"
WEBHOOK_CREATE_SECRET = "Use this secret (BattleMetrics gives you one); leave empty to generate one"
WEBHOOK_CREATE_GAME = "Playtime endpoints: the Steam app id to store, e.g. 393380 for Squad"
WEBHOOK_LIST = "List this server's endpoints"
WEBHOOK_ROTATE = "Give an endpoint a new secret; the old one keeps working for 24 hours"
WEBHOOK_DISABLE = "Disable an endpoint: it stops accepting anything"
WEBHOOK_PATH_ARG = "The endpoint (start typing to pick one)"

WEBHOOK_NO_PUBLIC_URL = (
    "Questlog doesn't know the address game servers should use yet. Set `public_url` under "
    "`[web]` in config.toml to it (for example `https://questlog.example.org`) and restart Questlog."
)
WEBHOOK_CREATED = (
    "**New {kind} endpoint**\n{urls}\n**Secret:** ||{secret}||\n"
    "Copy the secret now: it is not shown again (use `/webhook rotate` for a new one)."
)
WEBHOOK_ROTATED = (
    "**New secret for** {path}: ||{secret}||\nThe old secret keeps working until {until}."
)
WEBHOOK_DISABLED = "Endpoint {path} is disabled: it now answers 404."
WEBHOOK_NONE = "This server has no endpoints yet. Create one with `/webhook create`."
WEBHOOK_UNKNOWN = "There is no such endpoint in this server."
WEBHOOK_LIST_LINE = "{path} · {kind}{game} · {state} · last used {used}"

LINK_GROUP = "Link your game accounts to your Discord account in this server"
LINK_STEAM = "Link your Steam account (SteamID64, profile link or custom URL name)"
LINK_STEAM_ARG = "Your SteamID64, profile link (steamcommunity.com/...) or custom URL name"
LINK_MINECRAFT = "Get a one-time code to link your Minecraft account in game"
UNLINK = "Remove a linked account"
LINKS = "Show linked accounts"
LINKS_MEMBER_ARG = "Whose accounts to show (default: yours)"
SOURCE_ARG = "Which account"
ADMIN_GROUP = "Admin tools for members' linked accounts"
ADMIN_LINK = "Link an account to a member (moves it if another member has it)"
ADMIN_UNLINK = "Remove a member's linked account"
ADMIN_MEMBER_ARG = "The member to link the account to"
ADMIN_UNLINK_MEMBER_ARG = "The member whose account to remove"
ADMIN_ACCOUNT_ARG = "Steam: SteamID64, profile link or custom URL; Minecraft: the player's UUID"

STEAM_LINKED = "Linked your Steam account **{name}** (`{steam_id}`)."
STEAM_LINKED_PRIVATE = (
    "\nYour Steam profile or game details are **private**, so Questlog can't read your Steam "
    "playtime or achievements. Set *Game details* to *Public* in Steam's privacy settings to "
    "share them; server playtime from BattleMetrics still counts."
)
STEAM_PRIVATE_HINT = (
    "\n🔒 The linked Steam account's game details are **private**, so Questlog can't read its "
    "Steam playtime or achievements. In Steam: *Edit Profile → Privacy Settings → Game details: "
    "Public*. The next sync picks it up (admins can run `/sync now`)."
)
STEAM_LINKED_UNCHECKED = (
    "\n(Steam isn't reachable from here right now, so the profile wasn't checked.)"
)
STEAM_VANITY_UNKNOWN = "There is no Steam profile with the custom URL name `{name}`."
STEAM_NOT_A_PROFILE = "That is not a player's Steam profile (is it a group?)."
STEAM_NO_PROFILE = "There is no Steam profile with the id `{steam_id}`."
STEAM_NEEDS_ID = (
    "Steam lookups aren't set up on this Questlog: give your 17-digit SteamID64 instead."
)
STEAM_BUSY = "Steam isn't answering right now. Try again in a few minutes."
LINK_TAKEN = "That account is already linked to another member of this server. An admin can move it with `/admin link`."
MINECRAFT_CODE = (
    "Your code is **{code}**. Join the Minecraft server and enter it with the server's Questlog "
    "link command (for example `/questlog link {code}`) within 10 minutes. It works once."
)
UNLINKED = "Unlinked your {source} account."
UNLINKED_MEMBER = "Unlinked {member}'s {source} account."
NOTHING_TO_UNLINK = "There is no {source} account linked here."
NO_LINKS = "{who} no linked accounts in this server."
LINK_LINE = "**{source}:** {name}`{external_id}`{flags}"
ADMIN_LINKED = "Linked {source} account `{external_id}` to {member}."
BAD_MINECRAFT_UUID = (
    "A Minecraft account is given by its UUID, like `069a79f4-44e9-4726-a5be-fca90e38aaf5`."
)

PLAYTIME_GROUP = "Playtime from linked accounts"
PLAYTIME_SHOW = "Show playtime per game and source"
PLAYTIME_CHART = "A chart of daily playtime, per game"
PLAYTIME_MEMBER_ARG = "Whose playtime (default: yours)"
PLAYTIME_GAME_ARG = "Only this game (start typing to pick one)"
LEADERBOARD_GAME_ARG = "The game (start typing to pick one)"
PLAYTIME_PERIOD_ARG = (
    "today, the last 7, 30, 90 or 365 days, this calendar week or month, or all time (default)"
)
LEADERBOARD = "The most played members of a game"
PLAYTIME_NONE = "{who} no playtime recorded here yet. Link accounts with `/link`."
PLAYTIME_LINE = "**{game}** · {source}: {duration}"
PLAYTIME_TITLE = "Playtime of {name}"
LEADERBOARD_TITLE = "{game} · {period}"
LEADERBOARD_EMPTY = "Nobody has playtime in {game} for {period} yet."
LEADERBOARD_PAGE = "Page {page} of {pages}"
LEADERBOARD_IMAGE_ARG = "Draw the board as a picture (default: a list with mentions)"
LEADERBOARD_RANKED = "Members ranked: {members} · page {page} of {pages}"
LEADERBOARD_ALT = "{rank}. {name}: {duration}"
MEMBER_LEFT = "(left the server)"
MEMBER_UNKNOWN = "member …{tail}"
CHART_TITLE = "Playtime per day · {name}"
CHART_SUBTITLE = "{period} · {total} in all"
CHART_NOTHING = "{name} has no playtime in {period}: nothing to chart yet."
CHART_PERIOD_ARG = "today, the last 7, 30, 90 or 365 days (rolling), or all time (default 30 days)"
STATS_GROUP = "Server statistics"
STATS_SERVER = "A chart of who played per day and the most played games"
STATS_TITLE = "Activity · {name}"
STATS_SUBTITLE = "{period} · {members} members played"
STATS_NOTHING = "Nobody with a linked account played in {period}: nothing to chart yet."
WINDOW_NAMES = {
    "today": "today",
    "7d": "the last 7 days",
    "30d": "the last 30 days",
    "90d": "the last 90 days",
    "365d": "the last 365 days",
    "all": "all time",
}
PERIOD_NAMES = {
    **WINDOW_NAMES,
    "week": "this calendar week (from Monday)",
    "month": "this calendar month",
}
SOURCE_NAMES = {
    "steam": "Steam",
    "battlemetrics": "this community's servers",
    "minecraft": "Minecraft server",
}

FEED_EVENTS = "Choose which kinds of events go to the feed"
FEED_EVENTS_PROMPT = "Pick the events to post in the feed (all are on by default):"
FEED_EVENTS_SAVED = "Saved: the feed now posts {kinds}."
FEED_EVENTS_NONE = "nothing (every kind is off)"
EVENT_NAMES = {
    "minecraft.session.started": "Minecraft: joined a server",
    "minecraft.session.ended": "Minecraft: left a server",
    "minecraft.achievement": "Minecraft: advancements",
    "playtime.milestone": "Playtime milestones",
    "custom.*": "Custom events from scripts",
    "steam.achievement": "Steam achievements",
    "steam.game_played": "Steam: played today (one line per game and day)",
    "steam.session.started": "Steam: started a game (off by default: noisy)",
    "steam.session.ended": "Steam: stopped playing, with the duration (off by default)",
}

SYNC_GROUP = "Steam sync: read linked Steam accounts now, or see the plan and the day's budget"
SYNC_NOW = "Read linked Steam libraries now (one member's, or everyone's in this server)"
SYNC_NOW_MEMBER_ARG = "Only this member's Steam account"
SYNC_STATUS = "Show the Steam sync's plan and today's API calls"
SYNC_NO_ACCOUNTS = "No Steam account is linked here{who}. Players link theirs with `/link steam`."
SYNC_NOT_RUNNING = {
    "not_configured": "Steam sync is off: no Steam API key is configured (`[steam] api_key`).",
    "disabled": "Steam sync is off (`[steam] sync_enabled = false`).",
    "invalid_key": (
        "Steam sync is paused: Steam refused the API key ({detail}). The key is tried again by"
        " itself (next at {probe}) and the sync resumes when Steam accepts it; check"
        " `[steam] api_key`."
    ),
}
SYNC_COOLDOWN = (
    "Steam libraries were read for this server a short while ago; `/sync now` works again"
    " {when}. (The Steam sync keeps reading players in a game by itself meanwhile.)"
)
SYNC_DONE = "Read {ok} of {total} Steam libraries."
SYNC_DONE_PRIVATE = " {count} have private game details (the player can make them public in Steam)."
SYNC_DONE_DEFERRED = " {count} could not be read now (Steam busy or down); they are retried soon."
SYNC_STATUS_LINES = (
    "**Steam sync:** {state}\n"
    "Linked accounts: {accounts} ({in_game} in a game now, {private} private)\n"
    "Who is playing: checked every {summary}\n"
    "Players in a game: read every {active}; everyone else once every {sweep}\n"
    "API calls today: sync {calls:,} of {limit:,} (projected {projected:,} a day);"
    " lookups and links {lookups:,} of {lookup_limit:,}"
)
SYNC_STATES = {
    "running": "running",
    "disabled": "off (`[steam] sync_enabled = false`)",
    "not_configured": "off (no Steam API key)",
    "invalid_key": "paused: Steam refused the API key since {since}; next probe at {probe}",
}
