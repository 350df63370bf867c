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
