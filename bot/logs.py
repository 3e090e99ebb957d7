"""Secrets never reach a log line: the bot token (in Telegram URLs, which libraries log) and the LLM API key."""

from __future__ import annotations

import logging


class RedactSecrets(logging.Filter):
    """Replaces secrets in every log record: the token is in Telegram URLs, which libraries log."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "[REDACTED]")
            record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if any(secret in text for secret in self._secrets):
                for secret in self._secrets:
                    text = text.replace(secret, "[REDACTED]")
                record.msg = f"{record.getMessage()}\n{text}"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True


def install_redaction(*secrets: str) -> None:
    """Redact `secrets` from everything the root logger's handlers write."""
    redact = RedactSecrets(*secrets)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.addFilter(redact)
