"""Discord extensions: every module here with ``async def setup(bot)`` is loaded by the bot
(bot.gateway.client.discover_extensions); ``_``-prefixed modules are private helpers."""
