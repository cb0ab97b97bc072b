"""privaudit: privacy-risk audits of chat apps from their network traffic."""

__version__ = "0.1.0"
