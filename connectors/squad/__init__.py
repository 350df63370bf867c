"""Squad servers (game id 393380): console actions over RCON (``AdminBroadcast``,
``AdminWarn``); the reserved-slot list a server reads through ``RemoteAdminListHosts.cfg``."""

from connectors.squad.connector import SQUAD_APP_ID, SquadConnector

__all__ = ["SQUAD_APP_ID", "SquadConnector"]
