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
FEED_STATUS_FAILED = "\n**Posting is stopped:** {reason}\nFix it, then run `/feed channel` again."
FEED_STATUS_ERROR = "\n**Last error:** {error}"

WEBHOOK_GROUP = "Webhook endpoints that game servers and scripts send activity to"
WEBHOOK_CREATE = "Create an endpoint and show its URLs and secret (shown once)"
WEBHOOK_CREATE_KIND = (
    "playtime: BattleMetrics + get-playtime; minecraft: a server plugin; custom: scripts"
)
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
    "**New {kind} endpoint**\n{urls}\n**Secret:** ||`{secret}`||\n"
    "Copy the secret now: it is not shown again (use `/webhook rotate` for a new one)."
)
WEBHOOK_ROTATED = (
    "**New secret for** `{path}`: ||`{secret}`||\nThe old secret keeps working until {until}."
)
WEBHOOK_DISABLED = "Endpoint `{path}` is disabled: it now answers 404."
WEBHOOK_NONE = "This server has no endpoints yet. Create one with `/webhook create`."
WEBHOOK_UNKNOWN = "There is no such endpoint in this server."
WEBHOOK_LIST_LINE = "`{path}` · {kind}{game} · {state} · last used {used}"
