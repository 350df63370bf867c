"""Every text the cogs show, as message ids of the catalogues (bot/i18n/en.po and ru.po).

Two kinds:

* the command tree's texts (group, command and option descriptions, choices) are
  ``locale_str``: the English of en.po is Discord's default, and the Translator
  (bot/gateway/translator.py) gives ru, en-US and en-GB by the id;
* everything else is an id that a reply looks up in the member's language:
  ``texts_for(interaction)(strings.PLAYTIME_TITLE, name=...)``.

An id missing from en.po fails at import, so a typo cannot reach Discord.
"""

from __future__ import annotations

from discord.app_commands import Choice, locale_str

from bot.i18n import texts

_EN = texts("en")


def _tree(msgid: str) -> locale_str:
    english = _EN.get(msgid)
    if english is None:
        raise LookupError(f"{msgid!r} is missing from bot/i18n/en.po")
    return locale_str(english, id=msgid)


def choice(msgid: str, value: str) -> Choice[str]:
    """A slash-command choice named by ``msgid``."""
    return Choice(name=_tree(msgid), value=value)


# ------------------------------------------------------------------ the command tree
FEED_GROUP = _tree("feed.group")
FEED_CHANNEL = _tree("feed.channel")
FEED_CHANNEL_ARG = _tree("feed.channel.arg")
FEED_CHANNEL_BACKFILL_ARG = _tree("feed.channel.backfill_arg")
FEED_STATUS = _tree("feed.status")
FEED_EVENTS = _tree("feed.events")
FEED_TEST = _tree("feed.test")
FEED_LANGUAGE = _tree("feed.language")
FEED_LANGUAGE_ARG = _tree("feed.language.arg")
WEBHOOK_GROUP = _tree("webhook.group")
WEBHOOK_CREATE = _tree("webhook.create")
WEBHOOK_CREATE_KIND = _tree("webhook.create.kind_arg")
WEBHOOK_CREATE_SECRET = _tree("webhook.create.secret_arg")
WEBHOOK_CREATE_GAME = _tree("webhook.create.game_arg")
WEBHOOK_LIST = _tree("webhook.list")
WEBHOOK_ROTATE = _tree("webhook.rotate")
WEBHOOK_DISABLE = _tree("webhook.disable")
WEBHOOK_PATH_ARG = _tree("webhook.path_arg")
WEBHOOK_RCON = _tree("webhook.rcon")
WEBHOOK_RCON_GAME = _tree("webhook.rcon.game_arg")
WEBHOOK_RCON_HOST = _tree("webhook.rcon.host_arg")
WEBHOOK_RCON_PORT = _tree("webhook.rcon.port_arg")
WEBHOOK_RCON_ANNOUNCE = _tree("webhook.rcon.announce_arg")
WEBHOOK_RCON_REMOVE = _tree("webhook.rcon_remove")
LINK_GROUP = _tree("link.group")
LINK_STEAM = _tree("link.steam")
LINK_STEAM_ARG = _tree("link.steam.arg")
LINK_MINECRAFT = _tree("link.minecraft")
UNLINK = _tree("unlink")
LINKS = _tree("links")
LINKS_MEMBER_ARG = _tree("links.member_arg")
SOURCE_ARG = _tree("source_arg")
ADMIN_GROUP = _tree("admin.group")
ADMIN_LINK = _tree("admin.link")
ADMIN_UNLINK = _tree("admin.unlink")
ADMIN_MEMBER_ARG = _tree("admin.link.member_arg")
ADMIN_UNLINK_MEMBER_ARG = _tree("admin.unlink.member_arg")
ADMIN_ACCOUNT_ARG = _tree("admin.link.account_arg")
PRIVACY_GROUP = _tree("privacy.group")
PRIVACY_SHOW = _tree("privacy.show")
PRIVACY_EXPORT = _tree("privacy.export")
PRIVACY_EXPORTED = "privacy.exported"
PRIVACY_EXPORTED_CAPPED = "privacy.exported_capped"
PRIVACY_TITLE = "privacy.title"
PRIVACY_NO_LINKS = "privacy.no_links"
PRIVACY_LINK = "privacy.link"
PRIVACY_PLAYTIME = "privacy.playtime"
PRIVACY_NO_PLAYTIME = "privacy.no_playtime"
PRIVACY_COUNTS = "privacy.counts"
PRIVACY_TOKENS_YES = "privacy.tokens_yes"
PRIVACY_TOKENS_NO = "privacy.tokens_no"
PRIVACY_GAME = "privacy.game"
PRIVACY_MORE_GAMES = "privacy.more_games"  # plural
PRIVACY_COLLECTING_ON = "privacy.collecting_on"
PRIVACY_COLLECTING_OFF = "privacy.collecting_off"
PRIVACY_OFF = _tree("privacy.off")
PRIVACY_OFF_DONE = "privacy.off_done"
PRIVACY_OFF_ALREADY = "privacy.off_already"
PRIVACY_ON = _tree("privacy.on")
PRIVACY_ON_DONE = "privacy.on_done"
PRIVACY_ON_ALREADY = "privacy.on_already"
PRIVACY_DELETE = _tree("privacy.delete")
PRIVACY_DELETE_CONFIRM = "privacy.delete_confirm"
PRIVACY_DELETE_NOTHING = "privacy.delete_nothing"
PRIVACY_DELETE_BUTTON = "privacy.delete_button"
PRIVACY_CANCEL_BUTTON = "privacy.cancel_button"
PRIVACY_DELETE_CANCELLED = "privacy.delete_cancelled"
PRIVACY_DELETE_EXPIRED = "privacy.delete_expired"
PRIVACY_DELETED = "privacy.deleted"  # plural
PRIVACY_DISCORD = {  # what became of the member's Discord sign-in (bot.privacy.DiscordOutcome)
    "cleared": "privacy.discord.cleared",
    "unreachable": "privacy.discord.unreachable",
    "revoked": "privacy.discord.revoked",
    "kept": "privacy.discord.kept",
}
PRIVACY_SHARED_STEAM = "privacy.shared_steam"
PRIVACY_PRESENCE_GROUP = _tree("privacy.presence_group")
PRIVACY_PRESENCE_ON = _tree("privacy.presence_on")
PRIVACY_PRESENCE_OFF = _tree("privacy.presence_off")
PRIVACY_PRESENCE_NOW_ON = "privacy.presence_now_on"
PRIVACY_PRESENCE_NOW_OFF = "privacy.presence_now_off"
PRIVACY_PRESENCE_BLOCKED = "privacy.presence_blocked"
PRIVACY_PRESENCE_NOT_RUNNING = "privacy.presence_not_running"
PRIVACY_PRESENCE_STATE_ON = "privacy.presence_state_on"
PRIVACY_PRESENCE_STATE_OFF = "privacy.presence_state_off"
PRIVACY_PRESENCE_WHY_DEFAULT = "privacy.presence_why_default"
PRIVACY_PRESENCE_WHY_CHOICE = "privacy.presence_why_choice"
ADMIN_SETTINGS_PRESENCE_ARG = _tree("admin.settings.presence_default_arg")
SETTINGS_PRESENCE_LINE = "admin.settings.presence_line"
SETTINGS_PRESENCE_ON = "admin.settings.presence_on"
SETTINGS_PRESENCE_OFF = "admin.settings.presence_off"
SETTINGS_PRESENCE_UNCHANGED = "admin.settings.presence_unchanged"
PRIVACY_OPT_OUT_KEPT = "privacy.opt_out_kept"
ADMIN_FORGET = _tree("admin.forget")
ADMIN_FORGET_USER_ARG = _tree("admin.forget.user_id_arg")
ADMIN_FORGET_BAD_ID = "admin.forget.bad_id"
ADMIN_FORGET_CONFIRM = "admin.forget.confirm"
ADMIN_FORGET_NOTHING = "admin.forget.nothing"
ADMIN_FORGET_BUTTON = "admin.forget.button"
ADMIN_FORGOT = "admin.forgot"  # plural
ADMIN_FORGOT_DISCORD = {
    "cleared": "admin.forgot.discord.cleared",
    "unreachable": "admin.forgot.discord.unreachable",
    "revoked": "admin.forgot.discord.revoked",
    "kept": "privacy.discord.kept",
}
ADMIN_SETTINGS = _tree("admin.settings")
ADMIN_SETTINGS_REQUIRE_ARG = _tree("admin.settings.require_verified_arg")
SETTINGS_CURRENT = "admin.settings.current"
SETTINGS_YES = "admin.settings.yes"
SETTINGS_NO = "admin.settings.no"
SETTINGS_REQUIRE_ON = "admin.settings.require_on"
SETTINGS_REQUIRE_OFF = "admin.settings.require_off"
SETTINGS_UNCHANGED = "admin.settings.unchanged"
PLAYTIME_GROUP = _tree("playtime.group")
PLAYTIME_SHOW = _tree("playtime.show")
PLAYTIME_CHART = _tree("playtime.chart")
PLAYTIME_MEMBER_ARG = _tree("playtime.member_arg")
PLAYTIME_GAME_ARG = _tree("playtime.game_arg")
CHART_PERIOD_ARG = _tree("playtime.chart.period_arg")
LEADERBOARD = _tree("leaderboard")
LEADERBOARD_GAME_ARG = _tree("leaderboard.game_arg")
PLAYTIME_PERIOD_ARG = _tree("leaderboard.period_arg")
LEADERBOARD_IMAGE_ARG = _tree("leaderboard.image_arg")
STATS_GROUP = _tree("stats.group")
STATS_SERVER = _tree("stats.server")
SYNC_GROUP = _tree("sync.group")
SYNC_NOW = _tree("sync.now")
SYNC_NOW_MEMBER_ARG = _tree("sync.now.member_arg")
SYNC_STATUS = _tree("sync.status")

#: The periods of charts and leaderboards (bot/services/leaderboards.py), by their value.
PERIOD_NAMES = {
    key: f"period.{key}" for key in ("today", "7d", "30d", "90d", "365d", "all", "week", "month")
}

# ------------------------------------------------------------------ errors and common words
GUILD_ONLY = "error.guild_only"
INTERNAL_ERROR = "error.internal"
CANNOT_USE = "error.cannot_use"
MEMBER_PERMISSIONS = "error.member_permissions"
BOT_PERMISSIONS = "error.bot_permissions"
BAD_VALUE = "error.bad_value"
LIST_SEPARATOR = "word.list_separator"


def permission(flag: str) -> str:
    """A Discord permission's name as Discord's own client shows it (``manage_guild``)."""
    return f"permission.{flag}"


# ------------------------------------------------------------------ /feed
FEED_MISSING_PERMISSIONS = "feed.missing_permissions"
FEED_CHANNEL_SET = "feed.channel_set"
FEED_NO_CHANNEL = "feed.no_channel"
FEED_TEST_QUEUED = "feed.test_queued"
FEED_STATUS_LINES = "feed.status_lines"
FEED_CHANNEL_BACKFILLED = "feed.channel_backfilled"
FEED_CHANNEL_NOT_POSTED = "feed.channel_not_posted"
FEED_CHANNEL_RESUMED = "feed.channel_resumed"
FEED_CHANNEL_MOVED = "feed.channel_moved"
FEED_CHANNEL_MAYBE_POSTED = "feed.channel_maybe_posted"
FEED_STATUS_PAUSED = "feed.status_paused"
FEED_STATUS_PROBE = "feed.status_probe"
FEED_STATUS_NO_PROBE = "feed.status_no_probe"
FEED_STATUS_FAILURES = "feed.status_failures"
FEED_STATUS_FAILURE_LINE = "feed.status_failure_line"
FEED_STATUS_ERROR = "feed.status_error"
FEED_EVENTS_PROMPT = "feed.events_prompt"
FEED_EVENTS_SAVED = "feed.events_saved"
FEED_EVENTS_NONE = "feed.events_none"
FEED_LANGUAGE_SET = "feed.language_set"
FEED_LANGUAGE_AUTO = "feed.language_auto"
FEED_STATUS_LANGUAGE = "feed.status_language"
LANGUAGE_NAMES = {"ru": "language.ru", "en": "language.en"}
PAUSE_REASONS = {50001: "feed.pause.50001", 50013: "feed.pause.50013",
                 10003: "feed.pause.10003", 50008: "feed.pause.50008"}  # fmt: skip
PAUSE_OTHER = "feed.pause.other"


def event_name(event_type: str) -> str:
    """The name of an event kind in /feed events (``event.steam.achievement``)."""
    return f"event.{event_type}"


# ------------------------------------------------------------------ /webhook
WEBHOOK_NO_PUBLIC_URL = "webhook.no_public_url"
WEBHOOK_CREATED = "webhook.created"
WEBHOOK_CREATED_UNSIGNED = "webhook.created_unsigned"
WEBHOOK_ROTATED = "webhook.rotated"
WEBHOOK_DISABLED = "webhook.disabled"
WEBHOOK_NONE = "webhook.none"
WEBHOOK_UNKNOWN = "webhook.unknown"
WEBHOOK_LIST_LINE = "webhook.list_line"
WEBHOOK_LIST_GAME = "webhook.list_game"
WEBHOOK_ACTIVE = "webhook.state_active"
WEBHOOK_DISABLED_STATE = "webhook.state_disabled"
WEBHOOK_NEVER_USED = "webhook.never_used"
WEBHOOK_URL_DEFAULT = "webhook.url.default"
WEBHOOK_RCON_MODAL_TITLE = "webhook.rcon.modal_title"
WEBHOOK_RCON_MODAL_PASSWORD = "webhook.rcon.modal_password"
WEBHOOK_RCON_SAVED = "webhook.rcon.saved"
WEBHOOK_RCON_SAVED_QUIET = "webhook.rcon.saved_quiet"
WEBHOOK_RCON_WORKS = "webhook.rcon.works"
WEBHOOK_RCON_FAILED = "webhook.rcon.failed"
WEBHOOK_RCON_REMOVED = "webhook.rcon.removed"
WEBHOOK_RCON_NONE = "webhook.rcon.none"

# ------------------------------------------------------------------ linking
STEAM_LINKED = "steam.linked"
STEAM_LINKED_PRIVATE = "steam.linked_private"
STEAM_PRIVATE_HINT = "steam.private_hint"
STEAM_LINKED_UNCHECKED = "steam.linked_unchecked"
STEAM_PROBLEMS = {
    problem: f"steam.{problem}"
    for problem in ("vanity_unknown", "not_a_profile", "no_profile", "needs_id", "busy")
}
STEAM_INPUT_PROBLEMS = {
    "bad_link": "steam.bad_link",
    "bad_input": "steam.bad_input",
    "taken": "link.taken",
}
LINK_TAKEN = "link.taken"
MINECRAFT_CODE = "minecraft.code"
UNLINKED = "unlink.done"
UNLINKED_MEMBER = "unlink.done_member"
NOTHING_TO_UNLINK = "unlink.nothing"
NO_LINKS_SELF = "links.none_self"
NO_LINKS_MEMBER = "links.none_member"
LINK_LINE = "links.line"
LINK_VERIFIED = "links.verified"
LINK_PRIVATE = "links.private"
STEAM_VERIFY_PROMPT = "steam.verify_prompt"
STEAM_VERIFY_STEAM_ONLY = "steam.verify_steam_only"
STEAM_VERIFY_OFF = "steam.verify_off"
BUTTON_VERIFY_DISCORD = "button.verify_discord"
BUTTON_SIGN_IN_STEAM = "button.sign_in_steam"
STEAM_LINKED_VERIFIED = "steam.linked_verified"
STEAM_LINKED_UNVERIFIED = "steam.linked_unverified"
LINK_UNVERIFIED = "links.unverified"
LINKS_VERIFY_HINT = "links.verify_hint"
#: How a link was proven (account_links.verified_by) -> its flag in /links.
LINK_VERIFIED_BY = {
    "discord": "links.verified_discord",
    "openid": "links.verified_openid",
    "minecraft_code": "links.verified_code",
    "admin": "links.verified_admin",
}
#: Why a member lost a link (link_notices.reason) -> what /links tells them.
LINK_NOTICES = {
    "verified_by_other": "links.notice.verified_by_other",
    "verified_later": "links.notice.verified_later",
}
ADMIN_LINKED = "admin.linked"
BAD_MINECRAFT_UUID = "admin.bad_minecraft_uuid"

# ------------------------------------------------------------------ playtime
PLAYTIME_NONE_SELF = "playtime.none_self"
PLAYTIME_NONE_MEMBER = "playtime.none_member"
PLAYTIME_LINE = "playtime.line"
PLAYTIME_WITH_TOTAL = "playtime.with_total"
PLAYTIME_NOTE_ACTIVE = "playtime.note_active"
PLAYTIME_NOTE_BATTLEMETRICS = "playtime.note_battlemetrics"
PLAYTIME_TITLE = "playtime.title"
LEADERBOARD_TITLE = "leaderboard.title"
LEADERBOARD_EMPTY = "leaderboard.empty"
LEADERBOARD_PAGE = "leaderboard.page"
LEADERBOARD_RANKED = "leaderboard.ranked"
LEADERBOARD_ALT = "leaderboard.alt"
MEMBER_LEFT = "member.left"
MEMBER_UNKNOWN = "member.unknown"
CHART_TITLE = "chart.title"
CHART_SUBTITLE = "chart.subtitle"
CHART_NOTHING = "chart.nothing"
CHART_HOURS = "chart.hours"
CHART_MINUTES = "chart.minutes"
CHART_OTHER_GAMES = "chart.other_games"
STATS_TITLE = "stats.title"
STATS_SUBTITLE = "stats.subtitle"  # plural: the number of members who played
STATS_NOTHING = "stats.nothing"
STATS_MEMBERS_AXIS = "stats.members_axis"
STATS_GAMES_AXIS = "stats.games_axis"
SOURCE_NAMES = {key: f"source.{key}" for key in ("steam", "battlemetrics", "minecraft")}
GAME_MINECRAFT = "game.minecraft"
GAME_STEAM_APP = "game.steam_app"

# ------------------------------------------------------------------ /sync
SYNC_NO_ACCOUNTS = "sync.no_accounts"
SYNC_NO_ACCOUNTS_MEMBER = "sync.no_accounts_member"
SYNC_NOT_RUNNING = {
    state: f"sync.not_running.{state}" for state in ("not_configured", "disabled", "invalid_key")
}
SYNC_COOLDOWN = "sync.cooldown"
SYNC_DONE = "sync.done"
SYNC_DONE_PRIVATE = "sync.done_private"
SYNC_DONE_DEFERRED = "sync.done_deferred"
SYNC_STATUS_LINES = "sync.status_lines"
SYNC_STATES = {
    state: f"sync.state.{state}"
    for state in ("running", "disabled", "not_configured", "invalid_key")
}
SYNC_WHEN_UNKNOWN = "sync.when_unknown"

# /actions status
ACTIONS_GROUP = _tree("actions.group")
ACTIONS_STATUS = _tree("actions.status")
ACTIONS_TITLE = "actions.title"
ACTIONS_NONE = "actions.none"
ACTIONS_COUNTS = "actions.counts"
ACTIONS_PAUSE = "actions.pause"
ACTIONS_ROW = "actions.row"
ACTIONS_MEMBER = "actions.member"
ACTIONS_ERROR = "actions.error"

# /rewards
REWARDS_GROUP = _tree("rewards.group")
REWARDS_ADD = _tree("rewards.add")
REWARDS_LIST = _tree("rewards.list")
REWARDS_REMOVE = _tree("rewards.remove")
REWARDS_PREVIEW = _tree("rewards.preview")
REWARDS_HOURS_ARG = _tree("rewards.hours_arg")
REWARDS_ROLE_ARG = _tree("rewards.role_arg")
REWARDS_GAME_ARG = _tree("rewards.game_arg")
REWARDS_PERIOD_ARG = _tree("rewards.period_arg")
REWARDS_SOURCE_ARG = _tree("rewards.source_arg")
REWARDS_MODE_ARG = _tree("rewards.mode_arg")
REWARDS_REWARD_ARG = _tree("rewards.reward_arg")
REWARDS_KEEP_ARG = _tree("rewards.keep_arg")
REWARDS_SQUAD_GROUP_ARG = _tree("rewards.squad_group_arg")
REWARDS_SQUAD_PERMISSIONS_ARG = _tree("rewards.squad_permissions_arg")
REWARDS_COUNT_ARG = _tree("rewards.count_arg")
REWARDS_NO_MANAGE_ROLES = "rewards.refused.manage_roles"
REWARDS_EVERYONE = "rewards.refused.everyone"
REWARDS_MANAGED = "rewards.refused.managed"
REWARDS_ABOVE_BOT = "rewards.refused.above_bot"
REWARDS_ABOVE_YOU = "rewards.refused.above_you"
REWARDS_UNKNOWN_GAME = "rewards.refused.game"
REWARDS_UNKNOWN = "rewards.unknown"
REWARDS_DESCRIBE = "rewards.describe"
REWARDS_SQUAD_TARGET = "rewards.squad_target"
REWARDS_COUNTS_TOTAL = "rewards.counts_total"
REWARDS_BEST_GAME = "rewards.best_game"
REWARDS_ADDED = "rewards.added"
REWARDS_ADDED_NOW = "rewards.added_now"
REWARDS_ADDED_NONE = "rewards.added_none"
REWARDS_TITLE = "rewards.title"
REWARDS_NONE = "rewards.none"
REWARDS_ROW = "rewards.row"
REWARDS_PAUSED = "rewards.paused"
REWARDS_WAITING = "rewards.waiting"
REWARDS_REMOVED = "rewards.removed"
REWARDS_REMOVED_KEPT = "rewards.removed_kept"
REWARDS_CHOICE = "rewards.choice"
REWARDS_PREVIEW_NONE = "rewards.preview_none"
REWARDS_PREVIEW_SOME = "rewards.preview_some"
REWARDS_PREVIEW_ROW = "rewards.preview_row"
REWARDS_PREVIEW_MORE = "rewards.preview_more"
