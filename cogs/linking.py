"""/link, /unlink, /links for players; /admin link and /admin unlink for admins."""

from __future__ import annotations

import uuid

import discord
from discord import app_commands
from discord.ext import commands

from bot.gateway.client import Questlog, UserError, reply, texts_for
from bot.markdown import escape
from bot.services.accounts import LinkConflict, LinkError, SteamAccount, SteamLookupError
from cogs import _strings as strings
from cogs._views import ConfirmView, forgotten_text

SOURCES = [
    app_commands.Choice(name="Steam", value="steam"),
    app_commands.Choice(name="Minecraft", value="minecraft"),
]
# Names of products: never translated ("discord": the presence link, the member's own account).
LABELS = {"steam": "Steam", "minecraft": "Minecraft", "discord": "Discord"}


def _guild(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserError(strings.GUILD_ONLY)
    return interaction.guild_id


class Linking(commands.Cog):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    async def _steam_account(self, text: str) -> SteamAccount:
        """The Steam account the member typed, or a UserError saying what is wrong with it."""
        try:
            return await self.core.accounts.steam_account(text)
        except SteamLookupError as exc:
            problem = strings.STEAM_PROBLEMS[exc.problem]
            raise UserError(problem, name=escape(exc.value), steam_id=escape(exc.value)) from None
        except LinkError as exc:
            raise UserError(strings.STEAM_INPUT_PROBLEMS[exc.problem]) from None

    link = app_commands.Group(name="link", description=strings.LINK_GROUP, guild_only=True)

    async def _verify_view(
        self, interaction: discord.Interaction, guild_id: int
    ) -> tuple[discord.ui.View | None, str | None]:
        """Link buttons to verify a Steam account (a fresh state each), and the config key an
        admin must set for what is missing (None when both flows are offered)."""
        t = texts_for(interaction)
        made = await self.core.identity.offer(guild_id, interaction.user.id, t.lang)
        if made.steam_url is None:
            return None, made.missing
        view = discord.ui.View(timeout=None)
        if made.discord_url is not None:
            view.add_item(
                discord.ui.Button(label=t(strings.BUTTON_VERIFY_DISCORD), url=made.discord_url)
            )
        view.add_item(discord.ui.Button(label=t(strings.BUTTON_SIGN_IN_STEAM), url=made.steam_url))
        return view, made.missing

    @link.command(name="steam", description=strings.LINK_STEAM)
    @app_commands.describe(profile=strings.LINK_STEAM_ARG)
    async def link_steam(
        self, interaction: discord.Interaction, profile: str | None = None
    ) -> None:
        guild_id = _guild(interaction)
        t = texts_for(interaction)
        if profile is None or not profile.strip():
            view, missing = await self._verify_view(interaction, guild_id)
            if view is None:
                await reply(interaction, t(strings.STEAM_VERIFY_OFF, key=missing))
            elif missing is not None:
                await reply(interaction, t(strings.STEAM_VERIFY_STEAM_ONLY, key=missing), view=view)
            else:
                await reply(interaction, t(strings.STEAM_VERIFY_PROMPT), view=view)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)  # Steam may be slow
        account = await self._steam_account(profile)
        proven = await self.core.identity.proven_by_discord(interaction.user.id, account.steam_id)
        if proven:  # a verified connection of theirs: linked as verified (who-wins applies)
            await self.core.identity.link_proven(
                guild_id, interaction.user.id, account.steam_id, account.name, "discord"
            )
        else:
            try:
                await self.core.accounts.link(
                    guild_id=guild_id,
                    discord_user_id=interaction.user.id,
                    source="steam",
                    external_id=account.steam_id,
                    display_name=account.name,
                    status=account.status,
                )
            except LinkConflict:
                raise UserError(strings.LINK_TAKEN) from None
        text = t(
            strings.STEAM_LINKED,
            name=escape(account.name or account.steam_id),
            steam_id=account.steam_id,
        )
        if account.status == "private_profile":
            text += t(strings.STEAM_LINKED_PRIVATE)
        elif not account.checked:
            text += t(strings.STEAM_LINKED_UNCHECKED)
        view = None
        if proven:
            text += t(strings.STEAM_LINKED_VERIFIED)
        else:
            view, _ = await self._verify_view(interaction, guild_id)
            if view is not None:
                text += t(strings.STEAM_LINKED_UNVERIFIED)
        await reply(interaction, text, view=view)

    @link.command(name="minecraft", description=strings.LINK_MINECRAFT)
    async def link_minecraft(self, interaction: discord.Interaction) -> None:
        guild_id = _guild(interaction)
        code, _ = await self.core.accounts.new_code(
            guild_id=guild_id, discord_user_id=interaction.user.id, source="minecraft"
        )
        await reply(interaction, texts_for(interaction)(strings.MINECRAFT_CODE, code=code))

    @app_commands.command(name="unlink", description=strings.UNLINK)
    @app_commands.describe(source=strings.SOURCE_ARG)
    @app_commands.choices(source=SOURCES)
    @app_commands.guild_only()
    async def unlink(
        self, interaction: discord.Interaction, source: app_commands.Choice[str]
    ) -> None:
        guild_id = _guild(interaction)
        removed = await self.core.accounts.unlink(
            guild_id=guild_id, discord_user_id=interaction.user.id, source=source.value
        )
        template = strings.UNLINKED if removed else strings.NOTHING_TO_UNLINK
        await reply(interaction, texts_for(interaction)(template, source=LABELS[source.value]))

    @app_commands.command(name="links", description=strings.LINKS)
    @app_commands.describe(member=strings.LINKS_MEMBER_ARG)
    @app_commands.guild_only()
    async def links(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        guild_id = _guild(interaction)
        target = member or interaction.user
        t = texts_for(interaction)
        found = await self.core.accounts.links(guild_id, target.id)
        mine = target.id == interaction.user.id
        notices = await self.core.accounts.notices(guild_id, target.id) if mine else []
        if not found and not notices:
            if mine:
                await reply(interaction, t(strings.NO_LINKS_SELF))
            else:
                await reply(interaction, t(strings.NO_LINKS_MEMBER, member=target.mention))
            return
        lines = [
            t(
                strings.LINK_NOTICES[notice.reason],
                external_id=notice.external_id,
                day=t.day(notice.at.date()),
            )
            for notice in notices
        ]
        if not found:
            lines.append(t(strings.NO_LINKS_SELF))
        unverified = False
        for item in found:
            flag = strings.LINK_VERIFIED_BY.get(item.verified_by)
            flags = t(flag) if flag is not None else ""
            if item.source == "steam" and flag is None:
                flags = t(strings.LINK_UNVERIFIED)
                unverified = True
            elif flag is None and item.verified:
                flags = t(strings.LINK_VERIFIED)
            if item.status == "private_profile":
                flags += t(strings.LINK_PRIVATE)
            name = f"{escape(item.display_name)} " if item.display_name else ""
            lines.append(
                t(
                    strings.LINK_LINE,
                    source=LABELS.get(item.source, item.source),
                    name=name,
                    external_id=item.external_id,
                    flags=flags,
                )
            )
        if any(item.source == "steam" and item.status == "private_profile" for item in found):
            lines.append(t(strings.STEAM_PRIVATE_HINT))
        view = None
        if unverified and mine:
            view, _ = await self._verify_view(interaction, guild_id)
            if view is not None:
                lines.append(t(strings.LINKS_VERIFY_HINT))
        await reply(interaction, "\n".join(lines), view=view)

    admin = app_commands.Group(
        name="admin",
        description=strings.ADMIN_GROUP,
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @admin.command(name="link", description=strings.ADMIN_LINK)
    @app_commands.describe(
        member=strings.ADMIN_MEMBER_ARG,
        account=strings.ADMIN_ACCOUNT_ARG,
        source=strings.SOURCE_ARG,
    )
    @app_commands.choices(source=SOURCES)
    async def admin_link(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        source: app_commands.Choice[str],
        account: str,
    ) -> None:
        guild_id = _guild(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        name = status = None
        if source.value == "steam":
            found = await self._steam_account(account)
            external_id, name, status = found.steam_id, found.name, found.status
        else:
            try:
                external_id = str(uuid.UUID(account.strip()))
            except ValueError:
                raise UserError(strings.BAD_MINECRAFT_UUID) from None
        await self.core.accounts.link(
            guild_id=guild_id,
            discord_user_id=member.id,
            source=source.value,
            external_id=external_id,
            display_name=name,
            status=status,
            reassign=True,
            linked_by=f"admin:{interaction.user.id}",
        )
        await reply(
            interaction,
            texts_for(interaction)(
                strings.ADMIN_LINKED,
                source=LABELS[source.value],
                external_id=external_id,
                member=member.mention,
            ),
        )

    @admin.command(name="unlink", description=strings.ADMIN_UNLINK)
    @app_commands.describe(member=strings.ADMIN_UNLINK_MEMBER_ARG, source=strings.SOURCE_ARG)
    @app_commands.choices(source=SOURCES)
    async def admin_unlink(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        source: app_commands.Choice[str],
    ) -> None:
        guild_id = _guild(interaction)
        removed = await self.core.accounts.unlink(
            guild_id=guild_id, discord_user_id=member.id, source=source.value
        )
        label = LABELS[source.value]
        t = texts_for(interaction)
        if removed:
            await reply(
                interaction, t(strings.UNLINKED_MEMBER, member=member.mention, source=label)
            )
        else:
            await reply(interaction, t(strings.NOTHING_TO_UNLINK, source=label))

    @admin.command(name="settings", description=strings.ADMIN_SETTINGS)
    @app_commands.describe(
        require_verified=strings.ADMIN_SETTINGS_REQUIRE_ARG,
        presence_default=strings.ADMIN_SETTINGS_PRESENCE_ARG,
    )
    async def admin_settings(
        self,
        interaction: discord.Interaction,
        require_verified: bool | None = None,
        presence_default: bool | None = None,
    ) -> None:
        guild_id = _guild(interaction)
        t = texts_for(interaction)
        accounts, privacy = self.core.accounts, self.core.privacy
        state = lambda on: t(strings.SETTINGS_YES if on else strings.SETTINGS_NO)  # noqa: E731
        if require_verified is None and presence_default is None:
            on, unproven = await accounts.verification(guild_id)
            lines = [
                t(strings.SETTINGS_CURRENT, require_verified=state(on), unproven=t.number(unproven)),
                t(strings.SETTINGS_PRESENCE_LINE,
                  presence_default=state(await privacy.presence_default(guild_id))),
            ]  # fmt: skip
            if not privacy.presence_running:
                lines[-1] += " " + t(strings.PRIVACY_PRESENCE_NOT_RUNNING)
            await reply(interaction, "\n".join(lines))
            return
        lines = []
        if require_verified is not None:
            changed, unproven = await accounts.require_verified(guild_id, require_verified)
            if not changed:
                lines.append(
                    t(strings.SETTINGS_UNCHANGED, require_verified=state(require_verified))
                )
            else:
                template = (
                    strings.SETTINGS_REQUIRE_ON
                    if require_verified
                    else strings.SETTINGS_REQUIRE_OFF
                )
                lines.append(t.plural(template, unproven))
        if presence_default is not None:
            if await privacy.set_presence_default(guild_id, presence_default):
                on = (
                    strings.SETTINGS_PRESENCE_ON
                    if presence_default
                    else strings.SETTINGS_PRESENCE_OFF
                )
                lines.append(t(on))
            else:
                lines.append(
                    t(strings.SETTINGS_PRESENCE_UNCHANGED, presence_default=state(presence_default))
                )
            if presence_default and not privacy.presence_running:
                lines.append(t(strings.PRIVACY_PRESENCE_NOT_RUNNING))
        await reply(interaction, "\n".join(lines))

    @admin.command(name="forget", description=strings.ADMIN_FORGET)
    @app_commands.describe(user_id=strings.ADMIN_FORGET_USER_ARG)
    async def admin_forget(self, interaction: discord.Interaction, user_id: str) -> None:
        """A user id, not a member option: the member may have left the server."""
        guild_id = _guild(interaction)
        t = texts_for(interaction)
        typed = user_id.strip().strip("<@!>")
        if not (typed.isascii() and typed.isdigit() and 15 <= len(typed) <= 20):
            raise UserError(strings.ADMIN_FORGET_BAD_ID)
        member = int(typed)
        about = await self.core.privacy.stored_about(guild_id, member)
        if not about.anything:
            await reply(interaction, t(strings.ADMIN_FORGET_NOTHING, user_id=member))
            return

        async def forget() -> str:
            done = await self.core.privacy.forget(guild_id, member, by_member=False)
            return forgotten_text(t, done, user_id=member, by_member=False)

        view = ConfirmView(
            interaction.user.id, t, strings.ADMIN_FORGET_BUTTON, forget, origin=interaction
        )
        text = t(
            strings.ADMIN_FORGET_CONFIRM, user_id=member, links=t.number(len(about.summary.links))
        )
        await reply(interaction, text, view=view)


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Linking(bot))
