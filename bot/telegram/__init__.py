"""The Telegram transport: python-telegram-bot handlers that render the engine's answers."""
