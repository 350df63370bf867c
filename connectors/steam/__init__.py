"""Steam: the Steam Web API client and the Steam connector declaration."""

from connectors.steam.client import (
    DEFAULT_BASE_URL,
    SUMMARIES_BATCH_SIZE,
    CallBudget,
    MemoryBudget,
    OwnedGame,
    PlayerSummary,
    SteamClient,
)
from connectors.steam.connector import SteamConnector
from connectors.steam.errors import (
    InvalidKey,
    NotConfigured,
    PrivateProfile,
    RateLimited,
    SteamError,
    Unavailable,
    VanityNotFound,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "SUMMARIES_BATCH_SIZE",
    "CallBudget",
    "InvalidKey",
    "MemoryBudget",
    "NotConfigured",
    "OwnedGame",
    "PlayerSummary",
    "PrivateProfile",
    "RateLimited",
    "SteamClient",
    "SteamConnector",
    "SteamError",
    "Unavailable",
    "VanityNotFound",
]
