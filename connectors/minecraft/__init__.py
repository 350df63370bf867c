from connectors.minecraft.connector import MinecraftConnector

__all__ = ["MinecraftConnector"]
