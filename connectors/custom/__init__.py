from connectors.custom.connector import CustomConnector

__all__ = ["CustomConnector"]
