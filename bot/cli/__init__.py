"""``questlog`` / ``python -m bot``: run the server and administer it without Discord."""

from bot.cli.commands import main

__all__ = ["main"]
