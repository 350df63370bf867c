"""``questlog`` / ``python -m bot``: run the server and administer it without Discord.

Sub-commands open the database directly (a second process beside the running server is fine:
SQLite's WAL mode and busy timeout handle it, and the server picks up endpoint changes within a
second). Errors are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bot import __version__
from bot.clock import SystemClock, to_iso
from bot.config import Config, ConfigError, example_toml, load_config
from bot.services.endpoint_admin import (
    EndpointAdmin,
    EndpointError,
    path_warnings,
    secret_warnings,
)
from bot.services.feed_admin import BACKFILL_MAX_HOURS
from bot.services.link_import import FORMATS as IMPORT_FORMATS
from bot.storage import Endpoint, StorageError, Store, backup_database, open_store
from bot.storage.postgres.dump import shown_url
from connectors.registry import Registry

T = TypeVar("T")


class CliError(Exception):
    pass


def _parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="configuration file (default ./config.toml; a missing file means every default)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parent = _parent()
    parser = argparse.ArgumentParser(
        prog="questlog",
        description="Questlog: activity and playtime bot for gaming communities.",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"questlog {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", parents=[parent], help="run Questlog (web server, and the bot when configured)"
    )
    run.add_argument(
        "--web-only",
        action="store_true",
        help="run without connecting to Discord (no token needed)",
    )

    endpoint = commands.add_parser(
        "endpoint", parents=[parent], help="create and manage webhook endpoints"
    )
    actions = endpoint.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", parents=[parent], help="create an endpoint and print its URLs and secret"
    )
    kinds = Registry().discover().endpoint_kinds()
    create.add_argument(
        "--kind",
        required=True,
        choices=sorted(kinds),
        help="; ".join(f"{name}: {kind.description}" for name, (_, kind) in sorted(kinds.items())),
    )
    create.add_argument(
        "--guild", required=True, type=int, metavar="ID", help="Discord server (guild) id"
    )
    create.add_argument(
        "--secret", help="use this secret (BattleMetrics generates its own: paste it here)"
    )
    create.add_argument(
        "--read-secret", help="separate secret for get-playtime callers (kind playtime)"
    )
    create.add_argument(
        "--game-id", type=int, help="fixed Steam app id that wins over the body's (kind playtime)"
    )
    create.add_argument("--path", help="keep an existing Playtime-Service path when migrating")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    listing = actions.add_parser("list", parents=[parent], help="list endpoints")
    listing.add_argument(
        "--guild", type=int, metavar="ID", help="only this Discord server's endpoints"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list (no secrets)")
    rotate = actions.add_parser("rotate", parents=[parent], help="give an endpoint a new secret")
    rotate.add_argument("path", help="the endpoint's path (from `endpoint list`)")
    rotate.add_argument("--secret", help="the new secret (default: generate one)")
    rotate.add_argument(
        "--grace-hours",
        type=float,
        help="keep the old secret valid this long (default from config, 24)",
    )
    rotate.add_argument(
        "--read", action="store_true", help="replace the read secret instead (immediately)"
    )
    rotate.add_argument(
        "--json", action="store_true", help="print one JSON object with the new secret"
    )
    disable = actions.add_parser(
        "disable", parents=[parent], help="disable an endpoint (it answers 404)"
    )
    disable.add_argument("path", help="the endpoint's path (from `endpoint list`)")
    enable = actions.add_parser(
        "enable", parents=[parent], help="enable a disabled endpoint again (same secrets)"
    )
    enable.add_argument("path", help="the endpoint's path (from `endpoint list`)")
    rcon = actions.add_parser(
        "rcon",
        parents=[parent],
        help="give an endpoint its game server's RCON console (announcements in game)",
    )
    rcon.add_argument("path", help="the endpoint's path (from `endpoint list`)")
    rcon.add_argument(
        "--game",
        choices=("minecraft", "squad"),
        help="minecraft (a minecraft endpoint) or squad (a playtime endpoint of game 393380)",
    )
    rcon.add_argument("--host", help="the server's RCON address (host name or IP)")
    rcon.add_argument("--port", type=int, help="the server's RCON port")
    rcon.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the RCON password from standard input (never an argument: shells log those)",
    )
    rcon.add_argument(
        "--no-announce",
        action="store_true",
        help="do not announce milestones and rewards in game over this console",
    )
    rcon.add_argument("--remove", action="store_true", help="forget the endpoint's console")

    feed = commands.add_parser(
        "feed", parents=[parent], help="set or inspect a server's activity feed"
    )
    feed_actions = feed.add_subparsers(dest="action", metavar="ACTION", required=True)
    feed_set = feed_actions.add_parser(
        "set", parents=[parent], help="post a server's events to a channel"
    )
    feed_set.add_argument(
        "--guild", required=True, type=int, metavar="ID", help="Discord server (guild) id"
    )
    feed_set.add_argument(
        "--channel", required=True, type=int, metavar="ID", help="text channel id"
    )
    feed_set.add_argument(
        "--backfill",
        type=int,
        default=0,
        choices=range(0, BACKFILL_MAX_HOURS + 1),
        metavar="HOURS",
        help="also post the events of the last HOURS (at most 72 h and 500 events) that were"
        " stored before the feed had a channel (default 0)",
    )
    feed_set.add_argument(
        "--language",
        choices=("ru", "en", "auto"),
        help="the language feed posts are written in: ru, en, or auto (the Discord server's"
        " primary language when Questlog speaks it, else English; the default)",
    )
    feed_set.add_argument(
        "--max-age",
        type=int,
        metavar="SECONDS",
        help="expire events still unposted after this long (default: never)",
    )
    feed_status_cmd = feed_actions.add_parser(
        "status", parents=[parent], help="pending, failed and sent events"
    )
    feed_status_cmd.add_argument(
        "--guild", required=True, type=int, metavar="ID", help="Discord server (guild) id"
    )
    feed_status_cmd.add_argument("--json", action="store_true", help="print one JSON object")

    sign = commands.add_parser(
        "sign", parents=[parent], help="compute a signature for a test request body"
    )
    sign.add_argument("--secret", required=True, help="the endpoint's secret")
    sign.add_argument(
        "--scheme",
        choices=("bm", "sha256", "hex"),
        default="sha256",
        help="bm: BattleMetrics (t=...,s=...); sha256: Minecraft and custom (sha256=...);"
        " hex: get-playtime's plain hex (default sha256)",
    )
    sign.add_argument(
        "--timestamp", help="bm: ISO 8601 t (default now); sha256: Unix seconds for X-Timestamp"
    )
    sign.add_argument("file", help="file holding the exact body, or - for standard input")

    key = commands.add_parser("key", parents=[parent], help="the instance key (OAuth tokens)")
    key_actions = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    key_actions.add_parser(
        "new", parents=[parent], help="print a new key for [security] secret_key"
    )
    key_actions.add_parser("where", parents=[parent], help="say where this set-up's key is")

    backup = commands.add_parser(
        "backup", parents=[parent], help="copy the database safely while it runs"
    )
    backup.add_argument("path", help="where to write the copy (a new .sqlite3 file)")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")

    link = commands.add_parser(
        "link",
        parents=[parent],
        help="link a member's game account, or import a file of links (an admin's link)",
    )
    link.add_argument("--guild", required=True, type=int, metavar="ID", help="Discord server id")
    link.add_argument("--user", type=int, metavar="ID", help="the member's Discord user id")
    which = link.add_mutually_exclusive_group(required=True)
    which.add_argument("--steam", metavar="STEAMID64", help="a SteamID64 (7656119...)")
    which.add_argument("--minecraft", metavar="UUID", help="a Minecraft player UUID")
    which.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        help="links from a CSV (user,source,id), DiscordSRV's accounts.aof or EssentialsX"
        " DiscordLink's accounts.json, in one transaction",
    )
    link.add_argument(
        "--format",
        choices=("auto", *IMPORT_FORMATS),
        default="auto",
        help="the --import file's format (default: detected)",
    )
    link.add_argument(
        "--force",
        action="store_true",
        help="move an account that another member holds (otherwise it is skipped)",
    )
    link.add_argument("--json", action="store_true", help="print the outcome as JSON")
    unlink = commands.add_parser("unlink", parents=[parent], help="remove a member's links")
    unlink.add_argument("--guild", required=True, type=int, metavar="ID", help="Discord server id")
    unlink.add_argument(
        "--user", required=True, type=int, metavar="ID", help="the member's Discord user id"
    )
    unlink.add_argument(
        "--source",
        choices=("steam", "minecraft"),
        help="only this kind of account (default: every link of the member)",
    )
    forget = commands.add_parser(
        "forget",
        parents=[parent],
        help="delete everything stored about a member in a server (one who left, say)",
    )
    forget.add_argument("--guild", required=True, type=int, metavar="ID", help="Discord server id")
    forget.add_argument(
        "--user", required=True, type=int, metavar="ID", help="the member's Discord user id"
    )
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    forget.add_argument("--json", action="store_true", help="print the outcome as JSON")

    actions_cmd = commands.add_parser(
        "actions", parents=[parent], help="what Questlog does on its own (roles, console lines)"
    )
    actions_what = actions_cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions_status = actions_what.add_parser(
        "status", parents=[parent], help="pending, paused, failed and recent actions"
    )
    actions_status.add_argument("--guild", type=int, metavar="ID", help="one server only")
    actions_status.add_argument("--json", action="store_true", help="print one JSON object")

    prune = commands.add_parser(
        "prune",
        parents=[parent],
        help="remove what the database may forget now (the server does it daily)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="only show what would be removed and freed"
    )
    prune.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser(
        "vacuum",
        parents=[parent],
        help="rebuild the database file (server stopped; needs free disk of twice its size)",
    )

    db = commands.add_parser("db", parents=[parent], help="move the database to PostgreSQL")
    db_actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    db_copy = db_actions.add_parser(
        "copy",
        parents=[parent],
        help="copy the SQLite database into PostgreSQL and verify it (server stopped)",
    )
    db_copy.add_argument(
        "--to",
        metavar="URL",
        help="postgresql://user[:password]@host[:port]/db (default: [database] url or"
        " $QUESTLOG_DATABASE_URL, which keeps the password out of the process list)",
    )
    db_copy.add_argument(
        "--force", action="store_true", help="replace what the PostgreSQL database holds"
    )

    config_cmd = commands.add_parser(
        "config", parents=[parent], help="show the configuration's keys (config-example.toml)"
    )
    config_actions = config_cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    config_actions.add_parser(
        "example",
        parents=[parent],
        help="print every section and key with its default and meaning, connectors' included",
    )
    status = commands.add_parser(
        "status", parents=[parent], help="show database and endpoint status"
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")

    sync = commands.add_parser(
        "sync", parents=[parent], help="read linked Steam libraries now (outside the plan)"
    )
    sync.add_argument("--guild", type=int, help="only accounts linked in this Discord server")
    sync.add_argument("--member", type=int, help="only this Discord member's accounts")
    sync.add_argument("--json", action="store_true", help="print the counts as JSON")
    return parser


def _endpoint_json(
    admin: EndpointAdmin, endpoint: Endpoint, base_url: str, *, with_secret: bool
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": endpoint.path,
        "kind": endpoint.kind,
        "guild_id": endpoint.guild_id,
        "urls": [url for _, url in admin.urls(endpoint, base_url)],
        "game_id": endpoint.game_id,
        "disabled": endpoint.disabled,
        "created_at": to_iso(endpoint.created_at),
        "last_used_at": to_iso(endpoint.last_used_at) if endpoint.last_used_at else None,
    }
    if with_secret:
        data["secret"] = endpoint.secret
        if endpoint.read_secret:
            data["read_secret"] = endpoint.read_secret
    return data


def _print_endpoint(admin: EndpointAdmin, endpoint: Endpoint, base_url: str) -> None:
    print(f"kind:    {endpoint.kind}")
    print(f"guild:   {endpoint.guild_id}")
    print(f"path:    {endpoint.path}")
    if endpoint.secret is not None:
        print(f"secret:  {endpoint.secret}")
    else:
        print("secret:  none (its address is its only key: keep the path private)")
    if endpoint.read_secret:
        print(f"read secret (get-playtime only): {endpoint.read_secret}")
    if endpoint.game_id is not None:
        print(f"fixed game id: {endpoint.game_id}")
    for label, url in admin.urls(endpoint, base_url):
        print(f"{label or f'{endpoint.kind} webhook'} URL: {url}")
    print("Keep the secret safe: it is shown only by this command and `endpoint rotate`.")


def _warn_base_url(config: Config) -> None:
    if not config.web.public_url and config.web.port != 0:
        print(
            f"note: [web] public_url is not set; URLs use {config.web.base_url()}."
            " Set public_url to the address game servers reach.",
            file=sys.stderr,
        )


def _require_database(config: Config) -> None:
    """A command that only reads never creates a database: a missing file is one line saying
    where it looked."""
    if config.database.url:
        return  # PostgreSQL: opening it says whether it is there
    path = Path(config.database.path)
    if not path.exists():
        where = f"the config file {config.source}" if config.source else "no config file"
        raise CliError(
            f"no database at {path} ({where}); start the server once with `questlog run`,"
            " or pass --config with the config.toml that names your database"
        )


def _with_store(
    config: Config, work: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the store (migrating it), run ``work`` on it, close it. ``create``: a command that
    writes may create a missing database, and says where once it succeeded (a failed command
    leaves no new database behind); the others refuse."""
    path = Path(config.database.path)
    if not create:
        _require_database(config)
    new = not config.database.url and not path.exists()

    async def run() -> T:
        store = await open_store(config.database.path, url=config.database.url, maintain=False)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        result = asyncio.run(run())
    except BaseException:
        if new:
            for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
        raise
    if new:
        print(f"note: created a new database at {path}", file=sys.stderr)
    return result


async def _base_url(config: Config, store: Store) -> str:
    """The address printed in URLs: [web] public_url, else host and port; with port = 0, where
    the running server said it listens, if its /healthz answers there."""
    base = config.web.base_url()
    if config.web.public_url or config.web.port != 0:
        return base
    url = await store.endpoints.listening()
    if url is not None:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return url
        except httpx.HTTPError:
            pass
    print(
        "note: [web] port = 0 picks a free port when the server starts, and no running server"
        " answers now, so these URLs have no usable port: set [web] public_url (or a fixed"
        " port) to the address senders reach.",
        file=sys.stderr,
    )
    return base


def cmd_endpoint(args: argparse.Namespace, config: Config) -> int:
    async def work(store: Store) -> None:
        admin = EndpointAdmin(store, SystemClock(), Registry().discover().endpoint_kinds())
        if args.action == "create":
            endpoint = await admin.create(
                kind=args.kind,
                guild_id=args.guild,
                secret=args.secret,
                read_secret=args.read_secret,
                game_id=args.game_id,
                path=args.path,
            )
            warnings = path_warnings(endpoint.path) if args.path else []
            if args.secret:
                warnings += secret_warnings("--secret", args.secret)
            if args.read_secret:
                warnings += secret_warnings("--read-secret", args.read_secret)
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
            _warn_base_url(config)
            if args.json:
                print(
                    json.dumps(
                        _endpoint_json(
                            admin, endpoint, await _base_url(config, store), with_secret=True
                        )
                    )
                )
            else:
                _print_endpoint(admin, endpoint, await _base_url(config, store))
        elif args.action == "list":
            endpoints = await admin.list(args.guild)
            if args.json:
                base = await _base_url(config, store)
                print(
                    json.dumps(
                        [_endpoint_json(admin, e, base, with_secret=False) for e in endpoints]
                    )
                )
            elif not endpoints:
                print(
                    "no endpoints yet: create one with `questlog endpoint create --kind playtime --guild ID`"
                )
            else:
                for e in endpoints:
                    state = "disabled" if e.disabled else "active"
                    used = to_iso(e.last_used_at) if e.last_used_at else "never"
                    game = f" game={e.game_id}" if e.game_id is not None else ""
                    print(
                        f"{e.path}  {e.kind:<9} guild={e.guild_id}{game}  {state}  last used {used}"
                    )
        elif args.action == "rotate":
            hours = (
                args.grace_hours
                if args.grace_hours is not None
                else config.webhooks.rotate_grace_hours
            )
            if hours < 0:
                raise CliError("--grace-hours must not be negative")
            endpoint = await admin.rotate(
                args.path, grace=timedelta(hours=hours), secret=args.secret, read=args.read
            )
            for warning in secret_warnings("--secret", args.secret) if args.secret else []:
                print(f"warning: {warning}", file=sys.stderr)
            if args.json:
                print(
                    json.dumps(
                        _endpoint_json(
                            admin, endpoint, await _base_url(config, store), with_secret=True
                        )
                    )
                )
            else:
                _print_endpoint(admin, endpoint, await _base_url(config, store))
                if not args.read and endpoint.previous_secret_expires_at:
                    print(
                        f"The old secret stays valid until {to_iso(endpoint.previous_secret_expires_at)}."
                    )
        elif args.action == "disable":
            endpoint = await admin.disable(args.path)
            print(f"disabled {endpoint.path}: it now answers 404")
        elif args.action == "enable":
            endpoint = await admin.enable(args.path)
            print(f"enabled {endpoint.path}: it answers again, with the same secrets")
        elif args.action == "rcon":
            await _endpoint_rcon(args, config, store, admin)

    _with_store(config, work, create=args.action == "create")
    return 0


async def _endpoint_rcon(
    args: argparse.Namespace, config: Config, store: Store, admin: EndpointAdmin
) -> None:
    from bot.services.console_admin import ConsoleAdmin
    from bot.vault import Vault

    consoles = ConsoleAdmin(store, SystemClock(), admin, lambda: Vault.from_config(config))
    if args.remove:
        removed = await consoles.remove(args.path)
        print("console removed" if removed else "the endpoint had no console")
        return
    missing = [f for f, v in (("--game", args.game), ("--host", args.host),
                              ("--port", args.port)) if v is None]  # fmt: skip
    if missing:
        raise CliError(f"{', '.join(missing)} required (or --remove)")
    if not args.password_stdin:
        raise CliError(
            "give the RCON password on standard input with --password-stdin"
            " (for example: questlog endpoint rcon PATH ... --password-stdin < rcon-password)"
        )
    password = sys.stdin.readline()
    settings = await consoles.set(
        args.path, game=args.game, host=args.host, port=args.port, password=password,
        announce=not args.no_announce,
    )  # fmt: skip
    what = "announces milestones and rewards" if settings.announce else "does not announce"
    print(f"console saved: {settings.game} at {settings.host}:{settings.port}; it {what} in game")
    problem = await consoles.check(settings.endpoint_id)
    if problem is None:
        print("logged in to the console: the settings work")
    else:
        print(
            f"warning: could not log in now ({problem}); the settings are saved, and what is"
            " queued for this console waits until it answers",
            file=sys.stderr,
        )


def cmd_feed(args: argparse.Namespace, config: Config) -> int:
    from bot.services.feed_admin import FeedAdmin, pause_reason

    if args.action == "set":
        if not 0 < args.guild < 2**63 or not 0 < args.channel < 2**63:
            raise CliError("--guild and --channel must be Discord ids")
        if args.max_age is not None and args.max_age <= 0:
            raise CliError("--max-age must be a positive number of seconds")

    async def work(store: Store) -> None:
        admin = FeedAdmin(
            store, SystemClock(), off_by_default=Registry().discover().default_off_types()
        )
        if args.action == "set":
            change = await admin.set_channel(
                args.guild, args.channel, max_age=args.max_age, backfill_hours=args.backfill
            )
            print(f"events of server {args.guild} now go to channel {args.channel}")
            if args.language is not None:
                await admin.set_language(
                    args.guild, None if args.language == "auto" else args.language
                )
            _, written = await admin.language(args.guild)
            print(f"feed posts are written in {'Russian' if written == 'ru' else 'English'}")
            if change.backfilled:
                print(f"{change.backfilled} stored events of the last {args.backfill} h are"
                      " posted there too, oldest first")  # fmt: skip
            if change.not_posted:
                print(
                    f"{change.not_posted} events stored before the feed had a channel are not"
                    f" posted (--backfill HOURS, at most {BACKFILL_MAX_HOURS}, posts the recent"
                    " ones)"
                )
            if change.resumed:
                print("the channel was paused; posting resumes now")
            if change.moved:
                print(
                    f"{change.moved} waiting events moved there from channel"
                    f" {change.previous_channel}, ahead of anything new"
                )
            if change.maybe_posted:
                print(
                    f"{change.maybe_posted} of the messages for channel {change.previous_channel}"
                    " were never confirmed (Discord's answer was lost): they may already show"
                    " there, and are posted in the new channel too"
                )
            return
        status = await admin.status(args.guild)
        reason = (
            pause_reason(status.pause_code, status.pause_detail)
            if status.channel_state == "paused"
            else None
        )
        if args.json:
            data = dataclasses.asdict(status)
            detail = data.pop("pause_detail")
            keys = list(data)  # channel_reason after channel_state, as it always was
            data["channel_reason"] = reason
            order = [*keys[:2], "channel_reason", *keys[2:]]
            print(json.dumps({key: data[key] for key in order} | {"pause_detail": detail}))
        else:
            _print_feed_status(status, reason)

    _with_store(config, work, create=args.action == "set")
    return 0


def _print_feed_status(status: Any, reason: str | None) -> None:
    state = status.channel_state
    if state == "paused":
        state = f"paused since {status.paused_since}: {reason}"
        if status.pause_code:
            state += f" (Discord code {status.pause_code})"
        state += (
            f"; next probe at {status.next_probe_at}"
            if status.next_probe_at
            else "; not probed: run feed set (or /feed channel) with a channel"
        )
    rows = [
        ("channel", status.channel_id),
        ("state", state),
        ("pending", status.pending),
        ("sent", status.sent),
        ("failed", status.failed),
        ("expired", status.expired),
        ("last error", status.last_error),
    ]
    for key, value in rows:
        print(f"{key:<11} {value if value is not None else '-'}")
    for failure in status.failures:
        print(f"refused     {failure.at} {failure.title}: {failure.reason}")


def cmd_sign(args: argparse.Namespace) -> int:
    from bot.server import sign_payload

    try:
        args.secret.encode("utf-8")
    except UnicodeEncodeError:
        raise CliError("--secret is not valid text (UTF-8)") from None

    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.scheme == "bm":
        stamp = args.timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        print(sign_payload("bm", args.secret, body, stamp))
    elif args.scheme == "sha256":
        if args.timestamp is not None and not args.timestamp.isdigit():
            raise CliError("--timestamp for sha256 is Unix seconds (the X-Timestamp header)")
        print(sign_payload("sha256", args.secret, body, args.timestamp))
    else:
        print(sign_payload("hex", args.secret, body, None))
    return 0


def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    target = Path(args.path)
    if target.exists() and not args.force:
        raise CliError(f"{target} exists; use --force to overwrite it")
    if config.database.url:
        from bot.storage.postgres.dump import dump_database

        asyncio.run(dump_database(config.database.url, target))
        print(f"backed up {shown_url(config.database.url)} to {target} (pg_dump, custom format:")
        print(f"restore it with pg_restore --dbname=URL {target})")
        print(f"remember the instance key too: {_key_location(config)}")
        return 0
    source = Path(config.database.path)
    if not source.exists():
        raise CliError(f"no database at {source}")

    asyncio.run(backup_database(source, target))
    print(f"backed up {source} to {target}")
    print(f"remember the instance key too: {_key_location(config)}")
    return 0


def _key_location(config: Config) -> str:
    """Where the key that opens this database's OAuth tokens is (never the key itself)."""
    from bot.vault import key_path

    if config.security.secret_key:
        return "[security] secret_key (or QUESTLOG_SECRET_KEY) in your configuration"
    path = key_path(config)
    if path.exists():
        return f"{path} (back it up with the database: without it members must connect again)"
    return f"{path} (not created yet: it is made when the first member connects)"


def cmd_key(args: argparse.Namespace, config: Config) -> int:
    from bot.vault import new_key

    if args.action == "new":
        print(new_key())
        print(
            "put it in [security] secret_key or QUESTLOG_SECRET_KEY; a new key cannot open"
            " tokens sealed with the old one (members then connect again)",
            file=sys.stderr,
        )
        return 0
    print(_key_location(config))
    return 0


def cmd_link(args: argparse.Namespace, config: Config) -> int:
    from connectors.base import SchemaError, steam_id

    if args.import_file is not None:
        return _import_links(args, config)
    if args.user is None:
        raise CliError("--user is required with --steam or --minecraft")
    if args.steam is not None:
        source = "steam"
        try:
            external = steam_id(args.steam, "--steam")
        except SchemaError as exc:
            raise CliError(str(exc)) from None
    else:
        source = "minecraft"
        try:
            external = str(uuid.UUID(args.minecraft.strip()))
        except ValueError:
            raise CliError(f"--minecraft: {args.minecraft!r} is not a UUID") from None

    async def work(store: Store) -> list[str]:
        return await store.links.import_links(
            args.guild, [(args.user, source, external)], SystemClock().now(),
            linked_by="cli", reassign=args.force,
        )  # fmt: skip

    [outcome] = _with_store(config, work, create=True)
    if outcome == "taken":
        raise CliError(f"{source} account {external} is linked to another member; --force moves it")
    if args.json:
        print(json.dumps({"status": outcome, "source": source, "id": external}))
    elif outcome == "unchanged":
        print(f"{source} account {external} was already linked to {args.user}")
    else:
        print(f"linked {source} account {external} to {args.user} in server {args.guild}")
    return 0


def _import_links(args: argparse.Namespace, config: Config) -> int:
    from bot.services.link_import import ImportFileError, parse

    path = Path(args.import_file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    try:
        entries, skipped = parse(path.name, text, args.format)
    except ImportFileError as exc:
        raise CliError(f"{path}: {exc}") from None

    async def work(store: Store) -> list[str]:
        rows = [(e.user_id, e.source, e.external_id) for e in entries]
        return await store.links.import_links(
            args.guild, rows, SystemClock().now(), linked_by="import", reassign=args.force
        )

    outcomes = _with_store(config, work, create=True) if entries else []
    report: dict[str, list[str]] = {"linked": [], "unchanged": [], "taken": []}
    for entry, outcome in zip(entries, outcomes, strict=True):
        report[outcome].append(entry.where)
    summary = {
        "linked": len(report["linked"]),
        "already_linked": len(report["unchanged"]),
        "taken_by_another_member": report["taken"],
        "skipped": [{"where": s.where, "reason": s.reason} for s in skipped],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"linked {summary['linked']:,}, already linked {summary['already_linked']:,},"
        f" held by another member {len(report['taken']):,} (--force moves them),"
        f" skipped {len(skipped):,}"
    )
    for where in report["taken"][:20]:
        print(f"  {where}: the account is linked to another member")
    for item in skipped[:20]:
        print(f"  {item.where}: {item.reason}")
    hidden = max(0, len(report["taken"]) - 20) + max(0, len(skipped) - 20)
    if hidden:
        print(f"  ... and {hidden:,} more (--json lists them all)")
    return 0


def cmd_unlink(args: argparse.Namespace, config: Config) -> int:
    sources = [args.source] if args.source else ["steam", "minecraft"]

    async def work(store: Store) -> int:
        removed = 0
        for source in sources:
            removed += await store.links.unlink(
                guild_id=args.guild,
                discord_user_id=args.user,
                source=source,
                now=datetime.now(UTC),
            )
        return removed

    removed = _with_store(config, work)
    print(f"removed {removed} link{'s' if removed != 1 else ''} of {args.user}")
    return 0


def cmd_forget(args: argparse.Namespace, config: Config) -> int:
    """An admin's forget, as /admin forget does it: everything about the member in the guild,
    and their Discord sign-in when it serves only this guild (cleared at Discord when OAuth is
    configured and Discord answers)."""
    from bot.identity import oauth_client
    from bot.privacy import PrivacyService
    from bot.vault import Vault

    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("this deletes data for good: pass --yes to confirm")
        answer = input(f"Forget user {args.user} in server {args.guild}? Type yes: ")
        if answer.strip().lower() != "yes":
            print("nothing was deleted")
            return 1
    clock = SystemClock()

    async def work(store: Store) -> tuple[Any, int]:
        summary = await store.privacy.summary(args.guild, args.user)
        oauth = oauth_client(config)
        service = PrivacyService(
            store,
            clock,
            vault=lambda: Vault.from_config(config),
            oauth=oauth,
            linked_roles_guild=config.linked_roles.guild_id,
            on_links_changed=lambda source: None,  # a running server notices at its next pass
        )
        try:
            return await service.forget(args.guild, args.user, by_member=False), len(summary.links)
        finally:
            if oauth is not None:
                await oauth.aclose()

    forgotten, links = _with_store(config, work)
    report = forgotten.report
    if args.json:
        print(
            json.dumps(
                {
                    "guild_id": args.guild,
                    "user_id": args.user,
                    "links": links,
                    "rows_removed": report.total,
                    "removed": report.removed,
                    "shared_steam_kept": report.shared_steam,
                    "opt_out_kept": report.kept_opt_out,
                    "discord_sign_in": forgotten.discord,
                }
            )
        )
        return 0
    if not report.total:
        print(f"nothing stored about {args.user} in {args.guild}")
        return 0
    print(f"forgot {args.user} in {args.guild}: {report.total:,} rows removed")
    for table, count in report.removed.items():
        print(f"  {table:<24} {count:,}")
    if report.shared_steam:
        print(f"  kept: Steam data of {', '.join(report.shared_steam)} (linked in another server)")
    print(f"Discord sign-in: {forgotten.discord.replace('_', ' ')}")
    return 0


def cmd_actions(args: argparse.Namespace, config: Config) -> int:
    now = SystemClock().now()
    found = _with_store(config, lambda store: store.actions.status(args.guild, now, limit=50))
    if args.json:
        print(
            json.dumps(
                {
                    "counts": found.counts,
                    "paused": [
                        {"guild_id": g, "key": k, "reason": r, "since": s, "next_probe_at": n}
                        for g, k, r, s, n in found.pauses
                    ],
                    "actions": [dataclasses.asdict(row) for row in found.recent],
                }
            )
        )
        return 0
    if not found.counts:
        print("no actions queued yet")
        return 0
    print(", ".join(f"{status} {count:,}" for status, count in sorted(found.counts.items())))
    for guild, key, reason, since, probe in found.pauses:
        print(f"paused  guild {guild} {key} since {since}: {reason} (next try {probe})")
    for row in found.recent:
        error = f" - {row.last_error}" if row.last_error else ""
        print(
            f"#{row.id:<6} {row.status:<9} guild {row.guild_id} {row.connector}.{row.action}"
            f" ({row.attempts} attempts){error}"
        )
    return 0


def cmd_prune(args: argparse.Namespace, config: Config) -> int:
    from bot.pruning import Pruner
    from bot.storage.records import RetentionPolicy

    policy = RetentionPolicy(
        raw_payload_days=config.database.raw_payload_days,
        feed_history_days=config.database.feed_history_days,
        timezone=config.general.timezone,
    )
    clock = SystemClock()

    async def work(store: Store) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        before = await store.retention.space()
        if args.dry_run:
            changed = await store.retention.pending(clock.now(), policy)
        else:
            changed = dict((await Pruner(store, clock, policy).run_once()).changed)
        return before, changed, await store.retention.space()

    before, changed, after = _with_store(config, work)
    size = lambda space: space["pages"] * space["page_size"]  # noqa: E731
    info = {
        "dry_run": args.dry_run,
        **changed,
        "bytes_before": size(before),
        "bytes_after": size(after),
        "free_bytes_in_file": after["free_pages"] * after["page_size"],
        "auto_vacuum": ("none", "full", "incremental")[after["auto_vacuum"]],
    }
    if args.json:
        print(json.dumps(info))
        return 0
    verb = "would remove or change" if args.dry_run else "removed or changed"
    print(f"{verb}:")
    for name, count in changed.items():
        print(f"  {name.replace('_', ' '):<22} {count:,}")
    if not args.dry_run:
        print(f"database file: {info['bytes_before']:,} -> {info['bytes_after']:,} bytes")
    if after["auto_vacuum"] != 2:
        print(
            "note: this database was made before pruning existed: freed pages are reused but the"
            " file does not shrink. Stop the server and run `questlog vacuum` once to change that."
        )
    return 0


def cmd_db(args: argparse.Namespace, config: Config) -> int:
    from bot.storage.instance import hold_server_lock
    from bot.storage.postgres.copy import copy_database

    url = args.to or config.database.url
    if not url:
        raise CliError("say where to copy: --to URL, or QUESTLOG_DATABASE_URL")
    if not url.startswith(("postgresql://", "postgres://")):
        raise CliError("the target must be a postgresql:// URL")
    path = Path(config.database.path)
    if not path.exists():
        raise CliError(f"no database at {path}")
    lock = hold_server_lock(path)  # the server stopped: nothing writes while it copies
    shown = shown_url(url)
    tty = sys.stderr.isatty()
    finished: set[str] = set()

    def progress(table: str, done: int, total: int) -> None:
        if tty:
            bar = "#" * (24 * done // total) if total else "#" * 24
            print(f"\r  {table:<26} [{bar:<24}] {done:,}/{total:,}", end="", file=sys.stderr)
            if done >= total:
                print(file=sys.stderr)
        elif done >= total and table not in finished:
            finished.add(table)
            print(f"  {table}: {total:,} rows", file=sys.stderr)

    print(f"copying {path} into {shown}", file=sys.stderr)
    try:
        report = asyncio.run(copy_database(path, url, force=args.force, progress=progress))
    finally:
        lock.release()
    print(
        f"copied {report.rows:,} rows in {len(report.tables)} tables into {shown}; verified:"
        " every table's row count and the SHA-256 of its rows match the SQLite file"
    )
    from bot.vault import key_path

    key = key_path(config)
    if config.security.secret_key:
        which = "keep [security] secret_key as it is"
    elif key.exists():
        which = f"set [security] secret_key (or QUESTLOG_SECRET_KEY) to the key in {key}"
    else:
        which = "set [security] secret_key (`questlog key new` prints one)"
    print(
        "next: set [database] url (or QUESTLOG_DATABASE_URL) to this database, "
        f"{which}, and start `questlog run` (README, Scaling out)"
    )
    return 0


def cmd_vacuum(args: argparse.Namespace, config: Config) -> int:
    from bot.storage import DatabaseInUse, vacuum_database

    if config.database.url:
        raise CliError(
            "`questlog db vacuum` rebuilds a SQLite file; PostgreSQL reclaims space itself"
            " (autovacuum), and VACUUM FULL is run with psql when it is really needed"
        )
    path = Path(config.database.path)
    if not path.exists():
        raise CliError(f"no database at {path}")
    wal = path.with_name(path.name + "-wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    # SQLite writes a full copy to its temporary directory, then the rebuilt pages through
    # the write-ahead log beside the database: up to the file's size in each place.
    temp = Path(os.environ.get("SQLITE_TMPDIR") or tempfile.gettempdir())
    needed: dict[int, tuple[Path, int]] = {}
    for where in (path.parent, temp):
        device = where.stat().st_dev
        folder, bytes_ = needed.get(device, (where, 0))
        needed[device] = (folder, bytes_ + size)
    for folder, bytes_ in needed.values():
        free = shutil.disk_usage(folder).free
        if free < bytes_:
            raise CliError(
                f"VACUUM writes a full copy of the database: it needs up to {bytes_:,} bytes"
                f" free in {folder}, and {free:,} are"
            )
    print(f"rebuilding {path} ({size:,} bytes); this takes a while for a large file")
    try:
        before, after = asyncio.run(vacuum_database(path))
    except DatabaseInUse as exc:
        raise CliError(str(exc)) from None
    print(f"vacuumed {path}: {before:,} -> {after:,} bytes; auto_vacuum is now incremental")
    return 0


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    from bot.services.status import status_report

    info = _with_store(config, lambda store: status_report(store, config, SystemClock().now()))
    if args.json:
        print(json.dumps(info))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key.replace('_', ' '):<{width}}  {value}")
    return 0


def cmd_sync(args: argparse.Namespace, config: Config) -> int:
    """Read linked Steam libraries now, from this process (safe while the server runs: the
    database serialises the writes, and the Steam budget is shared through it)."""
    if not config.steam.api_key:
        raise CliError("no Steam API key is configured ([steam] api_key or STEAM_API_KEY)")
    _require_database(config)

    async def run() -> tuple[int, dict[str, int]]:
        from bot.core import Core

        core = await Core.start(config)
        try:
            steam_ids = await core.steam_sync.linked_accounts(args.guild, args.member)
            if not steam_ids:
                raise CliError("no linked Steam account matches")
            report = await core.steam_sync.sync_report(steam_ids)
            if report["invalid_key"]:
                raise CliError(f"Steam refused the API key: {core.steam_sync.key_problem}")
            return len(steam_ids), dict(report)
        finally:
            await core.stop()

    accounts, report = asyncio.run(run())
    counts = {k: report.get(k, 0) for k in ("ok", "private", "deferred", "busy")}
    if args.json:
        print(json.dumps({"accounts": accounts, **counts}))
    else:
        print(
            f"read {counts['ok']} of {accounts} Steam libraries;"
            f" {counts['private']} private, {counts['deferred']} deferred (Steam busy or down)"
        )
    return 0


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from bot.server import serve, setup_logging

    path = Path(config.database.path)
    if not config.database.url and not path.exists() and str(path) != ":memory:":
        old = Path(config.database.written_path) if config.database.written_path else None
        if old is not None and old.exists() and old.resolve() != path.resolve():
            raise CliError(
                f"no database at {path}, but there is one at {old.resolve()}: [database] path"
                f" is now taken from the folder of {config.source}, not the current directory;"
                " move the database there or set an absolute path (Questlog will not start on"
                " an empty one by accident)"
            )
        print(f"note: creating a new database at {path}", file=sys.stderr)
    setup_logging(config.general.log_level)
    try:
        return asyncio.run(serve(config, web_only=args.web_only))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        raise CliError(
            f"cannot listen on {config.web.host}:{config.web.port}: {exc.strerror or exc}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config_path = getattr(args, "config", None)
        config = load_config(config_path)
        if config_path and config.source is None:
            print(f"note: {config_path} does not exist; using defaults", file=sys.stderr)
        if args.command == "run":
            return cmd_run(args, config)
        if args.command == "endpoint":
            return cmd_endpoint(args, config)
        if args.command == "feed":
            return cmd_feed(args, config)
        if args.command == "config":
            print(example_toml(), end="")
            return 0
        if args.command == "sign":
            return cmd_sign(args)
        if args.command == "backup":
            return cmd_backup(args, config)
        if args.command == "key":
            return cmd_key(args, config)
        if args.command == "status":
            return cmd_status(args, config)
        if args.command == "prune":
            return cmd_prune(args, config)
        if args.command == "link":
            return cmd_link(args, config)
        if args.command == "unlink":
            return cmd_unlink(args, config)
        if args.command == "forget":
            return cmd_forget(args, config)
        if args.command == "actions":
            return cmd_actions(args, config)
        if args.command == "vacuum":
            return cmd_vacuum(args, config)
        if args.command == "db":
            return cmd_db(args, config)
        if args.command == "sync":
            return cmd_sync(args, config)
    except ConfigError as exc:
        print(f"questlog: config error: {exc}", file=sys.stderr)
        return 2
    except (CliError, EndpointError) as exc:
        print(f"questlog: error: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"questlog: database error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2
