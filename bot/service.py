"""Start-up shared by the transports: load the model, make sure the index is current, open the engine."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.build import BuildReport, build_index
from bot.config import Settings
from bot.embedding import Embedder, SentenceTransformerEmbedder
from bot.engine import Engine
from bot.errors import IndexMissingError
from bot.multilingual import MultilingualModel, load_multilingual
from bot.store import open_index
from bot.writer import AnswerWriter

log = logging.getLogger(__name__)


def load_embedder(settings: Settings) -> Embedder:
    return SentenceTransformerEmbedder(settings.embedding_model)


def multilingual_model(settings: Settings) -> MultilingualModel | None:
    """The multilingual model for questions not in English, or None (MULTILINGUAL=off, or the extra missing)."""
    model = load_multilingual(settings.multilingual)
    if model is None and settings.multilingual != "off":
        log.info("Questions not in English take the English path: the [multilingual] extra is not installed")
    return model


def open_engine(
    settings: Settings,
    embedder: Embedder,
    *,
    on_rebuild: Callable[[str, BuildReport], None] | None = None,
    multilingual: MultilingualModel | None = None,
) -> Engine:
    """An engine on an up-to-date index: a missing or stale one is (re)built first and reported. With a
    `multilingual` model, an index without its vectors is stale (the rebuild embeds only those).

    A mismatched or corrupted index raises its `IndexStoreError`: that needs a person's decision.
    """
    index = None
    try:
        index = open_index(settings.index_dir, embedder)
        reason = index.manifest.stale_reason(settings.corpus_dir, settings.chunking, multilingual)
    except IndexMissingError:
        reason = "no index has been built yet"
    if reason is not None:
        report = build_index(
            settings.corpus_dir,
            settings.index_dir,
            embedder,
            settings.chunking,
            max_article_bytes=settings.max_article_bytes,
            multilingual=multilingual,
        )
        if on_rebuild is not None:
            on_rebuild(reason, report)
        else:
            log.info("Index rebuilt (%s): %s", reason, report.summary())
        index = open_index(settings.index_dir, embedder)
    assert index is not None
    return Engine(
        settings.index_dir,
        embedder,
        index,
        max_question_chars=settings.max_question_chars,
        writer=load_writer(settings, embedder, multilingual),
        multilingual=multilingual,
    )


def load_writer(
    settings: Settings, embedder: Embedder, multilingual: MultilingualModel | None = None
) -> AnswerWriter | None:
    """The answer writer when ANSWER_MODE=llm (raises `ConfigError` when its settings are incomplete). With the
    `multilingual` model it also checks Russian answers to Russian questions against the English passages."""
    llm = settings.llm()
    if llm is None:
        return None
    base_url, model, key = llm
    log.info("Written answers by %s at %s, every sentence checked", model, base_url)
    return AnswerWriter(
        base_url, model, embedder.embed, api_key=key, timeout=settings.llm_timeout_seconds, cross_lingual=multilingual
    )
