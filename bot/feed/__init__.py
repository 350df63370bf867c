"""The activity feed: the poster that drains the outbox, its Discord sender and the embeds."""
