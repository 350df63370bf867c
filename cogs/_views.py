"""A confirmation step (two buttons) and the words for what forgetting a member did, shared by
/privacy delete and /admin forget."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.i18n import Texts
from bot.privacy import Forgotten
from cogs import _strings as strings

log = logging.getLogger(__name__)

CONFIRM_SECONDS = 120


class ConfirmView(discord.ui.View):
    """A red button that runs ``action`` once (its text replaces the message) and Cancel; only
    the member who asked may press them, and after two minutes they are taken away."""

    def __init__(
        self,
        owner_id: int,
        t: Texts,
        confirm_label: str,
        action: Callable[[], Awaitable[str]],
        *,
        origin: discord.Interaction | None = None,
        timeout: float = CONFIRM_SECONDS,
    ) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.t = t
        self.action = action
        self.origin = origin  # the command whose answer holds the buttons
        self.done = False
        self.confirm.label = t(confirm_label)
        self.cancel.label = t(strings.PRIVACY_CANCEL_BUTTON)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.owner_id

    @discord.ui.button(style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if self.done:  # a second press while the first runs
            await interaction.response.defer()
            return
        self.done = True
        self.stop()
        await interaction.response.defer()  # acknowledged at once; the work may take seconds
        try:
            text = await self.action()
        except Exception:
            log.exception("a confirmed action failed")
            text = self.t(strings.INTERNAL_ERROR)
        await interaction.edit_original_response(
            content=text, view=None, allowed_mentions=discord.AllowedMentions.none()
        )

    @discord.ui.button(style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.done = True
        self.stop()
        await interaction.response.edit_message(
            content=self.t(strings.PRIVACY_DELETE_CANCELLED), view=None
        )

    async def on_timeout(self) -> None:
        if self.done or self.origin is None:
            return
        try:
            await self.origin.edit_original_response(
                content=self.t(strings.PRIVACY_DELETE_EXPIRED), view=None
            )
        except discord.HTTPException:
            log.debug("could not take the expired confirmation buttons away")


def forgotten_text(t: Texts, forgotten: Forgotten, *, user_id: int, by_member: bool) -> str:
    """What a forget removed, and what became of the Discord sign-in, in the reader's words."""
    report = forgotten.report
    if by_member:
        lines = [t.plural(strings.PRIVACY_DELETED, report.total)]
    else:
        lines = [t.plural(strings.ADMIN_FORGOT, report.total, user_id=user_id)]
    about = strings.PRIVACY_DISCORD if by_member else strings.ADMIN_FORGOT_DISCORD
    if forgotten.discord in about:
        lines.append(t(about[forgotten.discord]))
    if report.shared_steam:
        accounts = ", ".join(f"`{steam_id}`" for steam_id in report.shared_steam)
        lines.append(t(strings.PRIVACY_SHARED_STEAM, accounts=accounts))
    if report.kept_opt_out and by_member:
        lines.append(t(strings.PRIVACY_OPT_OUT_KEPT))
    return "\n".join(lines)
