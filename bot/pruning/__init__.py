"""Pruning: once a day, what the database may forget goes in small steps, and the freed pages
go back to the file system (see bot/storage/retention.py for what is pruned and what never is).
"""

from bot.pruning.pruner import Pruner, PruneReport

__all__ = ["PruneReport", "Pruner"]
