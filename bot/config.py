"""Settings, read once from the environment and `.env` (every one is documented in `.env.example`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.chunking import ChunkingSettings
from bot.embedding import DEFAULT_MODEL


class Settings(BaseSettings):
    """The bot's configuration; field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    embedding_model: str = DEFAULT_MODEL
    chunk_max_words: int = Field(default=110, ge=20, le=400)
    chunk_overlap_sentences: int = Field(default=1, ge=0, le=5)
    max_question_chars: int = Field(default=500, ge=20)
    history_turns: int = Field(default=3, ge=0, le=20)
    log_level: str = "INFO"
    log_questions: bool = False

    @property
    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(max_words=self.chunk_max_words, overlap_sentences=self.chunk_overlap_sentences)
