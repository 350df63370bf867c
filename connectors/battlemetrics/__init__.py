from connectors.battlemetrics.connector import BattleMetricsConnector

__all__ = ["BattleMetricsConnector"]
