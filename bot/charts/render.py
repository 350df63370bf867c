"""Daily playtime as stacked bars per game, on a card that reads on Discord's dark and light
themes alike: a dark neutral background (Discord's own dark embed colour), light text, and
game colours picked to keep contrast on it.

matplotlib's Figure API with the Agg canvas: no pyplot, no global state, safe in a worker
thread. Small totals are drawn in minutes (a 3-minute day is not "0.05 h"); every tick is a day
(a one-day chart never shows hours of the day)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

WIDTH, HEIGHT, DPI = 8.0, 3.6, 100
GAMES_DRAWN = 6  # the most played games get their own colour; the rest are "other games"
MINUTES_BELOW_HOURS = 2.0  # a chart whose best day is under two hours is drawn in minutes
BARS_UP_TO = 120  # days drawn as bars; longer windows as stepped bands (one shape per game)
NAME_CHARS = 26  # member and game names longer than this are cut with an ellipsis

# Member names often hold emoji or scripts the bundled font lacks: such glyphs are drawn as
# boxes, which is enough; matplotlib's warning for each one would flood the log.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)


@dataclass(frozen=True)
class Theme:
    background: str = "#2B2D31"  # Discord's dark embed background; a card on the light theme
    text: str = "#F2F3F5"
    muted: str = "#B5BAC1"
    grid: str = "#4E5058"
    # Bright enough on the dark card, distinct for colour-blind readers (blurple first).
    palette: tuple[str, ...] = (
        "#7984F5", "#F0B232", "#3BA55C", "#EB459E", "#00A8FC", "#ED8A53",
    )  # fmt: skip
    other: str = "#80848E"
    medals: tuple[str, ...] = ("#F0B232", "#C9CDD4", "#D08A4A")  # gold, silver, bronze


def _english_day(day: date) -> str:
    return f"{day:%b} {day.day}"


def _english_hours(hours: float) -> str:
    return f"{hours:,.1f} h" if hours < 100 else f"{hours:,.0f} h"


@dataclass(frozen=True)
class Words:
    """The words and formats a chart draws, in the asker's language (English by default)."""

    hours: str = "hours"
    minutes: str = "minutes"
    other_games: str = "other games"
    members_axis: str = "members who played"
    games_axis: str = "most played"
    day: Callable[[date], str] = _english_day  # a tick: "Mar 12" / "12 мар."
    hours_value: Callable[[float], str] = _english_hours  # a bar's label: "12.5 h" / "12,5 ч"


@dataclass(frozen=True)
class Day:
    day: date
    seconds: dict[str, int] = field(default_factory=dict)  # game label -> seconds


@dataclass(frozen=True)
class BoardRow:
    rank: int
    name: str
    seconds: int
    label: str  # the time as the board writes it ("12 h 30 min")


def _cut(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _tick_step(days: int) -> int:
    for step in (1, 2, 7, 14, 30, 61):
        if days / step <= 14:
            return step
    return 91


def render_daily(
    days: list[Day],
    title: str,
    subtitle: str,
    words: Words | None = None,
    theme: Theme | None = None,
) -> bytes:
    """A PNG of ``days`` (oldest first, every day present) as bars stacked per game."""
    theme = theme or Theme()
    words = words or Words()
    totals: dict[str, int] = {}
    for day in days:
        for game, seconds in day.seconds.items():
            totals[game] = totals.get(game, 0) + seconds
    ranked = sorted(totals, key=lambda game: (-totals[game], game))
    shown = ranked[:GAMES_DRAWN] if len(ranked) <= GAMES_DRAWN else ranked[: GAMES_DRAWN - 1]
    other = [g for g in ranked if g not in shown]
    best = max((sum(d.seconds.values()) for d in days), default=0)
    in_minutes = best < MINUTES_BELOW_HOURS * 3600
    unit, scale = (words.minutes, 60.0) if in_minutes else (words.hours, 3600.0)

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, facecolor=theme.background)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(facecolor=theme.background)
    positions = list(range(len(days)))
    bottom = [0.0] * len(days)
    series = [(game, theme.palette[i % len(theme.palette)], [game]) for i, game in enumerate(shown)]
    if other:
        series.append((words.other_games, theme.other, other))
    for label, colour, games in series:
        values = [sum(d.seconds.get(g, 0) for g in games) / scale for d in days]
        top = [b + v for b, v in zip(bottom, values, strict=True)]
        if len(days) <= BARS_UP_TO:
            axes.bar(positions, values, bottom=bottom, color=colour, width=0.8, label=label,
                     linewidth=0)  # fmt: skip
        else:  # a bar per day is thousands of patches: one stepped band per game instead
            axes.fill_between(positions, bottom, top, step="mid", color=colour, label=label,
                              linewidth=0)  # fmt: skip
        bottom = top
    step = _tick_step(len(days))
    ticks = list(range(len(days) - 1, -1, -step))[::-1]  # today always labelled
    axes.set_xticks(ticks, [words.day(days[i].day) for i in ticks])
    axes.set_xlim(-0.6, len(days) - 0.4)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=in_minutes, min_n_ticks=2))
    axes.set_ylim(0, max(bottom) * 1.12 if max(bottom, default=0) > 0 else 1)
    axes.set_ylabel(unit, color=theme.muted)
    axes.grid(axis="y", color=theme.grid, linewidth=0.8)
    axes.set_axisbelow(True)
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.tick_params(colors=theme.muted, length=0, labelsize=9)
    figure.suptitle(title, x=0.01, ha="left", color=theme.text, fontsize=13,
                    fontweight="bold", parse_math=False)  # fmt: skip
    axes.set_title(subtitle, loc="left", color=theme.muted, fontsize=10, parse_math=False)
    if len(series) > 1:
        legend = axes.legend(loc="upper left", frameon=False, fontsize=9, ncols=min(3, len(series)),
                             labelcolor=theme.text)  # fmt: skip
        for text in legend.get_texts():
            text.set_parse_math(False)
    # Fixed margins rather than tight_layout(), which lays the figure out by drawing it once
    # more (a third of the render time): the y labels are at most a few digits.
    figure.subplots_adjust(left=0.075, right=0.965, top=0.80, bottom=0.11)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=theme.background)
    return buffer.getvalue()


def render_server(
    days: list[tuple[date, int]],
    games: list[tuple[str, int]],
    title: str,
    subtitle: str,
    words: Words | None = None,
    theme: Theme | None = None,
) -> bytes:
    """A PNG of a server's activity: members who played per day (left) and the most played
    games over the same days, in hours (right)."""
    theme = theme or Theme()
    words = words or Words()
    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, facecolor=theme.background)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=(3, 2))
    for axes in (left, right):
        axes.set_facecolor(theme.background)
        for spine in axes.spines.values():
            spine.set_visible(False)
        axes.tick_params(colors=theme.muted, length=0, labelsize=9)
    positions = list(range(len(days)))
    counts = [count for _, count in days]
    colour = theme.palette[0]
    if len(days) <= BARS_UP_TO:
        left.bar(positions, counts, color=colour, width=0.8, linewidth=0)
    else:
        left.fill_between(positions, 0, counts, step="mid", color=colour, linewidth=0)
    step = _tick_step(len(days))
    ticks = list(range(len(days) - 1, -1, -step))[::-1]
    left.set_xticks(ticks, [words.day(days[i][0]) for i in ticks])
    left.set_xlim(-0.6, len(days) - 0.4)
    left.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=2))
    left.set_ylim(0, max(counts, default=0) * 1.12 or 1)
    left.grid(axis="y", color=theme.grid, linewidth=0.8)
    left.set_axisbelow(True)
    left.set_title(words.members_axis, loc="left", color=theme.muted, fontsize=10)
    top = games[:GAMES_DRAWN]
    labels = [_cut(label) for label, _ in top][::-1]
    hours = [seconds / 3600 for _, seconds in top][::-1]
    bars = right.barh(range(len(top)), hours, color=theme.palette[1], height=0.7, linewidth=0)
    right.set_yticks(range(len(top)), labels)
    for label in right.get_yticklabels():
        label.set_parse_math(False)
        label.set_color(theme.text)
    right.bar_label(bars, [words.hours_value(h) for h in hours], color=theme.muted, fontsize=8,
                    padding=3)  # fmt: skip
    right.set_xticks([])
    right.set_xlim(0, max(hours, default=0) * 1.35 or 1)
    right.set_title(words.games_axis, loc="left", color=theme.muted, fontsize=10)
    figure.suptitle(f"{title}\n", x=0.01, ha="left", color=theme.text, fontsize=13,
                    fontweight="bold", parse_math=False)  # fmt: skip
    figure.text(0.01, 0.875, subtitle, color=theme.muted, fontsize=10, parse_math=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=theme.background)
    return buffer.getvalue()


def render_board(
    rows: list[BoardRow], title: str, subtitle: str, theme: Theme | None = None
) -> bytes:
    """A PNG of one leaderboard page: a line per member (rank, name, a bar of their time
    against the page's best, the time written out), the first three in medal colours."""
    theme = theme or Theme()
    height = 1.25 + 0.42 * max(1, len(rows))
    figure = Figure(figsize=(WIDTH, height), dpi=DPI, facecolor=theme.background)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(facecolor=theme.background)
    positions = list(range(len(rows)))[::-1]  # the first rank on top
    best = max((row.seconds for row in rows), default=0) or 1
    colours = [
        theme.medals[row.rank - 1] if row.rank <= len(theme.medals) else theme.palette[0]
        for row in rows
    ]
    bars = axes.barh(positions, [row.seconds / best for row in rows], color=colours,
                     height=0.68, linewidth=0)  # fmt: skip
    axes.set_yticks(positions, [f"{row.rank}.  {_cut(row.name)}" for row in rows])
    for label in axes.get_yticklabels():
        label.set_parse_math(False)
        label.set_color(theme.text)
        label.set_fontsize(11)
    texts = axes.bar_label(bars, [row.label for row in rows], color=theme.muted, fontsize=10,
                           padding=6)  # fmt: skip
    for text in texts:
        text.set_parse_math(False)
    axes.set_xlim(0, 1.3)  # room for the longest bar's label
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_xticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.tick_params(length=0)
    figure.suptitle(f"{title}\n", x=0.01, ha="left", color=theme.text, fontsize=13,
                    fontweight="bold", parse_math=False)  # fmt: skip
    figure.text(0.01, 1 - 0.5 / height, subtitle, color=theme.muted, fontsize=10, va="top",
                parse_math=False)  # fmt: skip
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=theme.background)
    return buffer.getvalue()
