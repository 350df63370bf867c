"""The chart renderer's edge cases, checked on the pixels: a dark card that reads on both
Discord themes, day ticks, a bar per played day, stacked colours per game, minutes for small
totals."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from PIL import Image

from bot.charts import BoardRow, Day, Theme, render_board, render_daily


def image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance (sRGB linearised)."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c / 255) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def days(first: date, count: int, played: dict[int, dict[str, int]]) -> list[Day]:
    return [Day(first + timedelta(days=i), played.get(i, {})) for i in range(count)]


def bar_columns(img: Image.Image, colour: tuple[int, int, int]) -> int:
    """How many separate runs of columns hold the colour (one run per bar), looking at the
    lower half of the card, where bars stand and the legend is not."""
    width, height = img.size
    pixels = img.load()
    rows = range(height // 2, int(height * 0.9))
    has = [any(_near(pixels[x, y], colour) for y in rows) for x in range(width)]
    return sum(1 for x in range(1, width) if has[x] and not has[x - 1])


def _near(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def hex_rgb(value: str) -> tuple[int, int, int]:
    return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


THEME = Theme()
FIRST = hex_rgb(THEME.palette[0])
SECOND = hex_rgb(THEME.palette[1])


def test_the_card_is_dark_with_light_text() -> None:
    png = render_daily(days(date(2025, 3, 1), 7, {3: {"Squad": 3600}}), "Alice", "7 days")
    img = image(png)
    corner = img.getpixel((2, 2))
    assert luminance(corner) < 0.1  # Discord's dark embed colour
    brightest = max(luminance(img.getpixel((x, y))) for x in range(0, 400, 3) for y in range(0, 40))
    assert brightest > 0.8  # the title is light
    # Text contrast against the card (WCAG ratio) is at least 7:1 for the title colour.
    text, card = luminance(hex_rgb(THEME.text)), luminance(hex_rgb(THEME.background))
    assert (text + 0.05) / (card + 0.05) > 7


def test_the_first_of_the_month_is_one_bar_with_a_day_tick() -> None:
    png = render_daily(days(date(2025, 3, 1), 1, {0: {"Squad": 5400}}), "Alice", "today")
    assert bar_columns(image(png), FIRST) == 1


def test_several_days_are_several_bars_and_several_games_stack() -> None:
    played = {0: {"Squad": 3600}, 2: {"Squad": 1800, "Minecraft": 3600}, 5: {"Minecraft": 600}}
    img = image(render_daily(days(date(2025, 3, 1), 7, played), "Alice", "last 7 days"))
    assert bar_columns(img, FIRST) == 2  # the most played game (Minecraft) on two days
    assert bar_columns(img, SECOND) == 2  # Squad on two days, its own colour


@pytest.mark.parametrize("count", [30, 90, 365])
def test_long_windows_render_every_played_day(count: int) -> None:
    played = {i: {"Squad": 600 + 60 * (i % 50)} for i in range(0, count, 10)}
    img = image(render_daily(days(date(2024, 1, 1), count, played), "Alice", f"{count} days"))
    bars = bar_columns(img, FIRST)
    assert bars == len(played) or (count == 365 and bars >= len(played) * 0.9)


def test_many_games_end_in_other_games() -> None:
    played = {0: {f"Game {n}": 600 * (n + 1) for n in range(9)}}
    img = image(render_daily(days(date(2025, 3, 1), 3, played), "Alice", "3 days"))
    assert bar_columns(img, hex_rgb(THEME.other)) >= 1


def test_small_totals_are_drawn_in_minutes() -> None:
    from matplotlib.figure import Figure

    captured: list[str] = []
    original = Figure.savefig

    def spy(self: Figure, *args: object, **kwargs: object) -> None:
        captured.append(self.axes[0].get_ylabel())
        original(self, *args, **kwargs)

    Figure.savefig = spy  # type: ignore[method-assign]
    try:
        render_daily(days(date(2025, 3, 1), 7, {1: {"Squad": 180}}), "Alice", "7 days")
        render_daily(days(date(2025, 3, 1), 7, {1: {"Squad": 4 * 3600}}), "Alice", "7 days")
    finally:
        Figure.savefig = original  # type: ignore[method-assign]
    assert captured == ["minutes", "hours"]


def test_outside_text_is_not_mathtext() -> None:
    render_daily(days(date(2025, 3, 1), 2, {0: {"$x^2$ game": 600}}), "$Alice$", "$ 7 days")


def bar_rows(img: Image.Image, colour: tuple[int, int, int]) -> list[int]:
    """The length in pixels of each separate horizontal bar of the colour, top to bottom."""
    width, height = img.size
    pixels = img.load()
    lengths = [sum(1 for x in range(width) if _near(pixels[x, y], colour)) for y in range(height)]
    bars: list[int] = []
    for y in range(1, height):
        if lengths[y] > 20 and lengths[y - 1] <= 20:  # the top edge of a bar
            bars.append(lengths[y + 3])
    return bars


def test_a_leaderboard_page_is_a_bar_per_member_longest_first() -> None:
    rows = [BoardRow(rank, f"Member {rank}", 36_000 // rank, f"{10 // rank} h")
            for rank in range(1, 11)]  # fmt: skip
    img = image(render_board(rows, "Squad · the last 30 days", "page 1 of 2"))
    assert luminance(img.getpixel((2, 2))) < 0.05  # the dark card
    gold, silver, bronze = (hex_rgb(c) for c in THEME.medals)
    assert len(bar_rows(img, gold)) == len(bar_rows(img, silver)) == len(bar_rows(img, bronze)) == 1
    rest = bar_rows(img, FIRST)
    assert len(rest) == 7  # ranks 4 to 10 in the plain colour
    assert rest == sorted(rest, reverse=True) and rest[0] > rest[-1] * 2  # scaled to the time
    assert bar_rows(img, gold)[0] > bar_rows(img, silver)[0] > bar_rows(img, bronze)[0] > rest[0]
    one = image(render_board(rows[:1], "Squad · today", "page 1 of 1"))
    assert len(bar_rows(one, gold)) == 1 and one.height < img.height  # as tall as its rows


def test_a_leaderboard_of_odd_names_renders() -> None:
    names = ["$x^2$ \\frac", "🔥🔥 fire", "Чапаев", "名前", "a" * 40, ""]
    rows = [BoardRow(i + 1, name, 3600 * (6 - i), f"{6 - i} h") for i, name in enumerate(names)]
    img = image(render_board(rows, "$game$", "page 1 of 1"))
    assert len(bar_rows(img, FIRST)) == 3  # ranks 4 to 6 drawn, none of the names broke it
