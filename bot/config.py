"""Settings, read once from the environment and `.env` (every one is documented in `.env.example`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.chunking import ChunkingSettings
from bot.corpus import MAX_ARTICLE_BYTES
from bot.embedding import DEFAULT_MODEL
from bot.errors import ConfigError
from bot.feedback import MAX_VOTES

# What @BotFather hands out: the bot's numeric id, a colon, and a secret of letters, digits, _ and -.
_TOKEN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
IdList = Annotated[frozenset[int], NoDecode]


class Settings(BaseSettings):
    """The bot's configuration; field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    embedding_model: str = DEFAULT_MODEL
    # Questions not in English (bot/multilingual.py): "auto" uses the [multilingual] extra when installed.
    multilingual: Literal["auto", "off"] = "auto"
    chunk_max_words: int = Field(default=110, ge=20, le=400)
    chunk_overlap_sentences: int = Field(default=1, ge=0, le=5)
    max_article_bytes: int = Field(default=MAX_ARTICLE_BYTES, ge=1)
    max_question_chars: int = Field(default=500, ge=20)
    history_turns: int = Field(default=3, ge=0, le=20)
    log_level: str = "INFO"
    log_questions: bool = False
    # The shared store (bot/stores/pgvector.py): when set, passages live in this PostgreSQL database instead of
    # INDEX_DIR. A secret: it may hold a password, and is never logged.
    database_url: SecretStr | None = None

    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    allowed_user_ids: IdList = frozenset()
    allowed_chat_ids: IdList = frozenset()
    admin_user_ids: IdList = frozenset()
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    feedback_file: Path = Path("data/feedback.sqlite")
    feedback_max_votes: int = Field(default=MAX_VOTES, ge=1)
    feedback_retention_days: int = Field(default=0, ge=0)
    questions_per_minute: int = Field(default=12, ge=1)
    chat_memory_minutes: int = Field(default=60, ge=1)
    chats_remembered: int = Field(default=10_000, ge=1)

    answer_mode: Literal["extractive", "llm"] = "extractive"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=600)

    @field_validator("allowed_user_ids", "allowed_chat_ids", "admin_user_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        """ "123, -100456" → {123, -100456}: ids are listed the way people write them in .env."""
        if isinstance(value, str):
            return frozenset(int(part) for part in re.split(r"[,\s]+", value.strip()) if part)
        return value

    @field_validator("answer_mode", "multilingual", mode="before")
    @classmethod
    def _lower_case_mode(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    @property
    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(max_words=self.chunk_max_words, overlap_sentences=self.chunk_overlap_sentences)

    def database(self) -> str | None:
        """The PostgreSQL URL when the shared store is configured, else None; raises `ConfigError` (naming the
        setting, never its value) when it is not a PostgreSQL URL."""
        url = self.database_url.get_secret_value().strip() if self.database_url else ""
        if not url:
            return None
        if urlsplit(url).scheme not in ("postgresql", "postgres"):
            raise ConfigError("DATABASE_URL must be a PostgreSQL URL: postgresql://user:password@host:5432/database")
        return url

    def telegram_token(self) -> str:
        """The bot token, checked for shape; raises `ConfigError` naming the setting (never the value)."""
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value().strip():
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set: put the token from @BotFather into .env")
        token = self.telegram_bot_token.get_secret_value().strip()
        if not _TOKEN.match(token):
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is malformed: it should look like '123456789:AAE...' as given by @BotFather"
            )
        return token

    def webhook(self) -> tuple[str, str, str] | None:
        """(url, path, secret) when webhook mode is configured, else None; raises `ConfigError` when incomplete."""
        if not self.webhook_url:
            return None
        parts = urlsplit(self.webhook_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigError("WEBHOOK_URL must be a full URL such as https://bot.example.com/telegram")
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if not secret:
            raise ConfigError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
        if not _WEBHOOK_SECRET.match(secret):
            raise ConfigError("WEBHOOK_SECRET may hold only letters, digits, _ and - (1 to 256 characters)")
        return self.webhook_url, parts.path.lstrip("/"), secret

    def llm(self) -> tuple[str, str, str | None] | None:
        """(base URL, model, API key) when written answers are on (ANSWER_MODE=llm), else None.

        Raises `ConfigError` naming the missing setting (never a value).
        """
        if self.answer_mode != "llm":
            return None
        base_url = (self.llm_base_url or "").strip()
        model = (self.llm_model or "").strip()
        if not base_url:
            raise ConfigError("ANSWER_MODE=llm needs LLM_BASE_URL, e.g. http://localhost:11434/v1 for Ollama")
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigError("LLM_BASE_URL must be a full URL such as https://api.openai.com/v1")
        if not model:
            raise ConfigError("ANSWER_MODE=llm needs LLM_MODEL, the model name the server knows")
        key = self.llm_api_key.get_secret_value().strip() if self.llm_api_key else ""
        return base_url, model, key or None


def _database_url_parts(url: str) -> tuple[str, str, str, str, str]:
    """(scheme, user, password, host and port, database path) of a database URL, read as libpq reads it: the user
    information runs to the last "@" before the first "/", so a password holding "#" or "?" is found whole."""
    scheme, _, rest = url.strip().partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, _, host = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    return scheme, user, password, host, f"/{path.split('?', 1)[0]}" if slash else ""


def database_password(url: str) -> str:
    """The password written in a database URL ("" when none): what log redaction must hide."""
    return _database_url_parts(url)[2]


def redacted_database_url(url: str) -> str:
    """The database URL without its password or query (which may hold one), fit for logs and messages."""
    scheme, user, _, host, path = _database_url_parts(url)
    if not scheme or not host:
        return "the database in DATABASE_URL"
    return f"{scheme}://{user + '@' if user else ''}{host}{path}"
