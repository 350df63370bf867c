"""The Discord side: the bot client, its command tree and the component that keeps it connected."""
