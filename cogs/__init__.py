"""Discord extensions (slash commands); loaded by the bot in the next release."""
