"""Squad servers (game id 393380): console actions over RCON (``AdminBroadcast``,
``AdminWarn``); the reserved-slot list a server reads through ``RemoteAdminListHosts.cfg``."""

from connectors.squad.connector import (
    GROUP_NAME,
    PERMISSIONS,
    SQUAD_APP_ID,
    SquadConnector,
    admins_cfg,
)

__all__ = ["GROUP_NAME", "PERMISSIONS", "SQUAD_APP_ID", "SquadConnector", "admins_cfg"]
