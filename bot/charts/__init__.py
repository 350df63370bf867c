"""Charts as PNG images, drawn with matplotlib's object API off the event loop (no Discord
here: cogs send the bytes)."""

from bot.charts.render import (
    BoardRow,
    Day,
    Theme,
    Words,
    render_board,
    render_daily,
    render_server,
)

__all__ = ["BoardRow", "Day", "Theme", "Words", "render_board", "render_daily", "render_server"]
