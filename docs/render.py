"""The README's pictures, made from the project's own output: feed embeds from
bot/feed/embeds.py, the /playtime show and /leaderboard cards from cogs/playtime.py, the charts
from bot/charts. Embeds are drawn the way Discord's dark theme shows them (matplotlib, no
browser). Sample data only; nothing leaves the machine.

Run: ``.venv/bin/python docs/render.py`` (writes docs/*.png; not run by CI).
"""

from __future__ import annotations

import re
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

from bot.charts import BoardRow, Day, render_board, render_daily, render_server  # noqa: E402
from bot.feed.embeds import build_embed  # noqa: E402
from bot.i18n import texts  # noqa: E402
from bot.services.leaderboards import Board, MemberPlaytime  # noqa: E402
from bot.storage.records import Total  # noqa: E402
from cogs.playtime import board_embed, playtime_embed  # noqa: E402
from connectors.base import human_duration  # noqa: E402

OUT = ROOT / "docs"
CHAT = "#313338"  # Discord's dark chat background
CARD = "#2B2D31"  # an embed's background
TEXT, MUTED, LINK = "#DBDEE1", "#B5BAC1", "#C9CDFB"
WIDTH_PX, DPI = 720, 100
CHARS = 78  # characters per wrapped line at the body font size
MEMBERS = {4000000000000000011: "Alice", 4000000000000000012: "Boris", 4000000000000000013: "Chen"}
NOW = datetime(2026, 12, 2, 20, 15, tzinfo=UTC)


def plain(text: str) -> list[tuple[str, bool]]:
    """Discord markdown as Discord shows it: escapes dropped, **bold** kept as a flag, mentions
    as the member's name; one (text, bold) per line."""
    text = re.sub(r"<@(\d+)>", lambda m: "@" + MEMBERS.get(int(m[1]), "member"), text)
    text = re.sub(r"\\(.)", r"\1", text).replace("\u200b", "")
    # The bundled font has no emoji (Discord draws its own): leave the icons out.
    text = "".join(c for c in text if ord(c) < 0x2600 or 0x3000 <= ord(c) < 0xFE00).strip()
    lines = []
    for line in text.splitlines() or [""]:
        bold = line.startswith("**")
        lines.append((line.replace("**", ""), bold))
    return lines


def draw_embeds(embeds: list[dict[str, Any]], path: Path, author: str = "Questlog") -> None:
    rows: list[tuple[str, str, str, bool]] = []  # (kind, colour, text, bold)
    for embed in embeds:
        colour = f"#{embed.get('color', 0x5865F2):06X}"
        rows.append(("start", colour, "", False))
        if embed.get("title"):
            for piece in textwrap.wrap(plain(embed["title"])[0][0], CHARS - 8) or [""]:
                rows.append(("title", colour, piece, True))
        for line, bold in plain(embed.get("description") or ""):
            for piece in textwrap.wrap(line, CHARS) or [""]:
                rows.append(("body", colour, piece, bold))
        for field in embed.get("fields", []):
            rows.append(("body", colour, plain(field["name"])[0][0], True))
            rows.append(("body", colour, plain(field["value"])[0][0], False))
        footer = (embed.get("footer") or {}).get("text")
        stamp = embed.get("timestamp")
        if footer or stamp:
            parts = [footer] if footer else []
            if stamp:
                moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                parts.append(moment.strftime("%d/%m/%Y %H:%M"))
            when = " • ".join(parts)
            rows.append(("footer", colour, when, False))
        rows.append(("end", colour, "", False))
    line_px = {"title": 24, "body": 21, "footer": 20, "start": 10, "end": 14}
    height_px = 64 + sum(line_px[kind] for kind, *_ in rows)
    figure = Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI, facecolor=CHAT)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, WIDTH_PX)
    axes.set_ylim(height_px, 0)
    axes.axis("off")
    axes.add_patch(FancyBboxPatch((16, 10), 40, 40, boxstyle="circle,pad=0", color="#5865F2"))
    axes.text(70, 24, author, color="#FFFFFF", fontsize=11, fontweight="bold", va="center")
    axes.text(76 + 10 * len(author), 24, " BOT  Today at 20:15", color=MUTED, fontsize=8,
              va="center")  # fmt: skip
    y, top = 48.0, 0.0
    for kind, colour, text, bold in rows:
        if kind == "start":
            top = y + 6
        elif kind == "end":
            axes.add_patch(Rectangle((70, top), 600, y - top + 4, color=CARD))
            axes.add_patch(Rectangle((70, top), 4, y - top + 4, color=colour))
        elif kind == "title":
            axes.text(88, y + 14, text, color="#FFFFFF", fontsize=11, fontweight="bold",
                      va="center", parse_math=False, zorder=3)  # fmt: skip
        elif kind == "footer":
            axes.text(88, y + 12, text, color=MUTED, fontsize=8, va="center", parse_math=False,
                      zorder=3)  # fmt: skip
        else:
            axes.text(88, y + 12, text, color=TEXT, fontsize=10,
                      fontweight="bold" if bold else "normal", va="center",
                      parse_math=False, zorder=3)  # fmt: skip
        y += line_px[kind]
    figure.savefig(path, facecolor=CHAT)
    print(f"wrote {path.relative_to(ROOT)}")


def feed_embeds(lang: str = "en") -> list[dict[str, Any]]:
    """Sample events as the feed writes them, in ``lang``: titles come from each event's kind
    and data (bot/feed/titles.py), as in a real guild."""
    events = [
        {"type": "minecraft.session.started", "title": "",
         "payload": {"player_name": "Steve", "world": "survival"},
         "actor_user_id": 4000000000000000013, "occurred_at": "2026-12-02T19:02:00.000000Z"},
        {"type": "playtime.milestone", "title": "", "actor_name": "Alice",
         "payload": {"game_id": "393380", "game_name": "Squad", "hours": 100},
         "actor_user_id": 4000000000000000011, "occurred_at": "2026-12-02T19:40:00.000000Z"},
        {"type": "steam.achievement", "title": "", "actor_name": "Boris",
         "payload": {"game_id": "393380", "game_name": "Squad", "achievement": "Sharpshooter",
                     "percent": 2.3, "rarity": "rare: 2.3 % of players",
                     "description": "Kill 10 enemies from over 300 m"},
         "actor_user_id": 4000000000000000012, "occurred_at": "2026-12-02T19:55:00.000000Z"},
        {"type": "steam.game_played", "title": "", "actor_name": "Chen",
         "payload": {"game_id": "730", "game_name": "Counter-Strike 2", "seconds_today": 6000},
         "actor_user_id": 4000000000000000013, "occurred_at": "2026-12-02T20:10:00.000000Z"},
    ]  # fmt: skip
    return [build_embed(event, texts(lang)) for event in events]  # type: ignore[arg-type]


def main() -> int:
    OUT.mkdir(exist_ok=True)
    draw_embeds(feed_embeds(), OUT / "feed.png")
    draw_embeds(feed_embeds("ru"), OUT / "feed-ru.png")
    totals = [
        Total("393380", "steam", 362_520),
        Total("393380", "battlemetrics", 361_800),
        Total("minecraft", "minecraft", 128_400),
        Total("730", "steam", 46_200),
    ]
    view = MemberPlaytime(totals, {"393380": "Squad", "730": "Counter-Strike 2"}, False)
    draw_embeds([playtime_embed(texts("en"), "Alice", view).to_dict()], OUT / "playtime-show.png")
    board = Board(
        [(4000000000000000011, 362_520), (4000000000000000012, 301_900),
         (4000000000000000013, 88_020)],
        "Squad", 0, 1, 3,
    )  # fmt: skip
    draw_embeds([board_embed(texts("en"), board, "30d").to_dict()], OUT / "leaderboard.png")
    names = ["Alice", "Boris", "Chen", "Dmitri", "Ebba", "Farid", "Greta", "Hana", "Ivo", "Jun"]
    times = [362_520 * 10 // (rank + 9) - 2000 * rank for rank in range(1, 11)]
    rows = [BoardRow(rank, name, seconds, human_duration(seconds))
            for rank, (name, seconds) in enumerate(zip(names, times, strict=True), start=1)]  # fmt: skip
    (OUT / "leaderboard-image.png").write_bytes(
        render_board(rows, "Squad · the last 30 days", "Members ranked: 38 · page 1 of 4")
    )
    print("wrote docs/leaderboard-image.png")
    first = NOW.date() - timedelta(days=29)
    days = [
        Day(first + timedelta(days=i),
            {g: s for g, s in (("Squad", 3600 + 900 * (i % 4)), ("Minecraft", 2400 * (i % 3)),
                               ("Counter-Strike 2", 1800 if i % 7 == 3 else 0)) if s and i % 6})
        for i in range(30)
    ]  # fmt: skip
    (OUT / "chart.png").write_bytes(
        render_daily(days, "Playtime per day · Alice", "the last 30 days · 61 h in all")
    )
    print("wrote docs/chart.png")
    active = [(first + timedelta(days=i), 14 + (i * 7) % 11 - (5 if i % 7 in (1, 2) else 0))
              for i in range(30)]  # fmt: skip
    games = [("Squad", 1_540_000), ("Minecraft", 902_000), ("Counter-Strike 2", 310_000),
             ("Hell Let Loose", 120_000), ("Valheim", 44_000)]  # fmt: skip
    (OUT / "server.png").write_bytes(
        render_server(
            active, games, "Activity · Example Community", "the last 30 days · 38 members played"
        )
    )
    print("wrote docs/server.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
