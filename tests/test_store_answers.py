"""The same answer tests on both stores: the FAISS index directory and the PostgreSQL database.

The engine tests imported below run here once per store, with this module's `engine` fixture (pytest resolves
fixtures where a test is collected); then both stores must give the very same answers to the same questions.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import psycopg
import pytest
from conftest import PROJECT_CORPUS
from fakes import UNIT_TEST_PARAMS, FakeEmbedder
from test_engine import (
    OFF_TOPIC,
    TARGETED,
    test_answers_are_grounded,
    test_citation_metadata,
    test_off_topic_question_abstains,
    test_question_answered_with_its_sentence,
    test_sources_lists_the_corpus,
)

from bot.chunking import ChunkingSettings
from bot.engine import Engine
from bot.stores.pg_build import build_postgres
from bot.stores.pgvector import PgSource

__all__ = [
    "test_answers_are_grounded",
    "test_citation_metadata",
    "test_off_topic_question_abstains",
    "test_question_answered_with_its_sentence",
    "test_sources_lists_the_corpus",
]

STORES = ["faiss-directory", "postgresql"]


@pytest.fixture(scope="module")
def _answers_database(_postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database holding the project corpus, built once for this module (its tests only read it)."""
    corpus = tmp_path_factory.mktemp("pg-corpus")
    for path in sorted(PROJECT_CORPUS.glob("*.md")):
        shutil.copy2(path, corpus / path.name)
    with psycopg.connect(_postgres_server, autocommit=True) as admin:
        admin.execute("CREATE DATABASE kazbot_answers")
    url = _postgres_server.rsplit("/", 1)[0] + "/kazbot_answers"
    build_postgres(corpus, PgSource(url), FakeEmbedder(), ChunkingSettings())
    yield url
    with psycopg.connect(_postgres_server, autocommit=True) as admin:
        admin.execute("DROP DATABASE kazbot_answers WITH (FORCE)")


def _engine(store: str, request: pytest.FixtureRequest) -> Engine:
    if store == "postgresql":
        url = request.getfixturevalue("_answers_database")
        copies = request.getfixturevalue("tmp_path_factory").mktemp("copies")
        return Engine.open(PgSource(url, copies=copies), FakeEmbedder(), params=UNIT_TEST_PARAMS)
    # The session's build of the same corpus, only read: these tests never rebuild or reload.
    return Engine.open(request.getfixturevalue("_template_index"), FakeEmbedder(), params=UNIT_TEST_PARAMS)


@pytest.fixture(scope="module", params=STORES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """An engine on each store in turn, holding the project corpus (overrides conftest's `engine` here), opened
    once per store: the tests only ask questions without a conversation, which changes nothing in it."""
    return _engine(str(request.param), request)


QUESTIONS = [
    *(question for question, _, _ in TARGETED),
    *OFF_TOPIC,
    "Who leads the Democratic Party?",
    "who is zhanbolat mamai",
    "Why were the activists arrested?",
    "How many seats does the Majlis have?",
    "Tell me about the rally in Almaty",
    "what are the articles about",
    "When is the next parliamentary election?",
    "Was Mamai detained?",
]


def test_both_stores_give_the_same_answers(request: pytest.FixtureRequest) -> None:
    on_directory, on_database = (_engine(store, request) for store in STORES)
    for question in QUESTIONS:
        expected, got = on_directory.answer(question), on_database.answer(question)
        assert (got.outcome, got.text, got.citations) == (expected.outcome, expected.text, expected.citations), question
