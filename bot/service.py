"""Start-up shared by the transports: load the model, make sure the index is current, open the engine."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.build import BuildReport, ProgressFactory, build_index
from bot.config import Settings
from bot.corpus import scan
from bot.embedding import Embedder, SentenceTransformerEmbedder
from bot.engine import Engine
from bot.errors import IndexFormatError, IndexMissingError
from bot.multilingual import MultilingualModel, load_multilingual
from bot.stores.base import StoreSource
from bot.stores.faiss_dir import FaissDirSource
from bot.writer import AnswerWriter

log = logging.getLogger(__name__)


def load_embedder(settings: Settings) -> Embedder:
    """The configured embedder; its model is loaded when first needed (see `SentenceTransformerEmbedder`)."""
    return SentenceTransformerEmbedder(settings.embedding_model)


def multilingual_model(settings: Settings) -> MultilingualModel | None:
    """The multilingual model for questions not in English, or None (MULTILINGUAL=off, or the extra missing)."""
    model = load_multilingual(settings.multilingual)
    if model is None and settings.multilingual != "off":
        log.info("Questions not in English take the English path: the [multilingual] extra is not installed")
    return model


def has_corpus(settings: Settings) -> bool:
    """Whether this machine has a corpus folder with articles in it."""
    return settings.corpus_dir.is_dir() and bool(scan(settings.corpus_dir))


def store_source(settings: Settings) -> StoreSource:
    """Where the passages are: the PostgreSQL database when DATABASE_URL is set, else the index directory."""
    url = settings.database()
    if url is None:
        return FaissDirSource(settings.index_dir)
    from bot.stores.pg_copy import COPIES_FOLDER
    from bot.stores.pgvector import PgSource

    return PgSource(url, copies=settings.index_dir / COPIES_FOLDER)


def build_store(
    settings: Settings,
    embedder: Embedder,
    *,
    full: bool = False,
    progress: ProgressFactory | None = None,
    strict: bool = False,
    multilingual: MultilingualModel | None = None,
) -> BuildReport:
    """Rebuild the configured store from the corpus folder (see `build_index` and `build_postgres`)."""
    source = store_source(settings)
    if isinstance(source, FaissDirSource):
        return build_index(
            settings.corpus_dir,
            source.index_dir,
            embedder,
            settings.chunking,
            full=full,
            progress=progress,
            max_article_bytes=settings.max_article_bytes,
            strict=strict,
            multilingual=multilingual,
        )
    from bot.stores.pg_build import build_postgres
    from bot.stores.pgvector import PgSource

    assert isinstance(source, PgSource)
    return build_postgres(
        settings.corpus_dir,
        source,
        embedder,
        settings.chunking,
        full=full,
        progress=progress,
        max_article_bytes=settings.max_article_bytes,
        strict=strict,
        multilingual=multilingual,
    )


def open_engine(
    settings: Settings,
    embedder: Embedder,
    *,
    on_rebuild: Callable[[str, BuildReport], None] | None = None,
    multilingual: MultilingualModel | None = None,
) -> Engine:
    """An engine on an up-to-date store: a missing or stale one is (re)built first and reported. With a
    `multilingual` model, an index without its vectors is stale (the rebuild embeds only those).

    A mismatched or corrupted index raises its `IndexStoreError`: that needs a person's decision.
    """
    source = store_source(settings)
    index = None
    try:
        index = source.open(embedder)
        reason = index.manifest.stale_reason(settings.corpus_dir, settings.chunking, multilingual)
    except IndexMissingError:
        reason = "no index has been built yet"
    except IndexFormatError:  # written by an earlier version of the bot: rebuilding loses nothing
        reason = "the index was written by another version of the bot"
    if reason is not None and index is not None and not isinstance(source, FaissDirSource) and not has_corpus(settings):
        # A bot beside a shared database, with no corpus of its own: the database is rebuilt where the corpus is.
        log.info(
            "Serving %s as built (%s, but there is no corpus folder here to rebuild it from)", index.version, reason
        )
        reason = None
    if reason is not None:
        report = build_store(settings, embedder, multilingual=multilingual)
        if on_rebuild is not None:
            on_rebuild(reason, report)
        else:
            log.info("Index rebuilt (%s): %s", reason, report.summary())
        index = source.open(embedder)
    assert index is not None
    log.info("Answering from %s, state %s", source.describe(), index.version)
    if isinstance(embedder, SentenceTransformerEmbedder):
        embedder.load()  # Now, once, rather than in the middle of the first question (or the rebuild's).
    return Engine(
        source,
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
