"""End-to-end on the real model and the real corpus: the product as a user meets it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chunking import ChunkingSettings
from bot.conversation import Conversation
from bot.embedding import SentenceTransformerEmbedder
from bot.engine import CLOSEST_PREFIX, NOT_COVERED_TEXT, Engine, Outcome
from bot.errors import ModelIntegrityError
from bot.evaluate import evaluate, load_questions

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the corpus and an empty index folder, as a fresh clone has."""
    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    (root / "index").mkdir()
    return root


@pytest.fixture(scope="module")
def engine(workspace: Path, embedder: SentenceTransformerEmbedder) -> Engine:
    from bot.build import build_index

    build_index(workspace / "corpus", workspace / "index", embedder, ChunkingSettings())
    return Engine.open(workspace / "index", embedder)


# Floors guard against regressions. Each is set a little below the score measured on questions the scorer was
# never fitted on (the checking half of tests/data/news_qa.jsonl and news_followup.jsonl; README, "How well it
# answers"), never from the fitting data.
CHECKING_FLOORS = {"news_qa.jsonl": 0.65, "news_followup.jsonl": 0.55}


@pytest.mark.parametrize("name", sorted(CHECKING_FLOORS))
def test_checking_half_stays_above_its_measured_floor(engine: Engine, name: str) -> None:
    questions = [q for q in load_questions(DATA / name) if q.get("split") == "check"]
    result = evaluate(engine, questions)
    assert result.total == len(questions) > 0
    assert result.right >= CHECKING_FLOORS[name] * result.total, result.table() + "\n" + "\n".join(result.failures)


# Across SQuAD articles (fitted on one, checked on the other; README, "How well it answers"): 250/293 answerable
# right and 18/333 unanswerable abstained at the fitted threshold.
SQUAD_ACROSS_FLOORS = {"answerable": 0.82, "unanswerable": 0.03}


@pytest.mark.slow  # a whole `python -m bot fit` with the real model (about a minute); `make test-slow`
def test_fitting_anew_keeps_the_checking_scores_across_squad_articles(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    from bot.fit import run_fit
    from bot.scorer import ScorerParams

    out = tmp_path / "scorer.json"
    run_fit(embedder, DATA, ChunkingSettings(), out=out)
    checking = ScorerParams.load(out).provenance["checking_scores"]["squad_across_articles"]
    for kind, floor in SQUAD_ACROSS_FLOORS.items():
        assert checking[kind]["share_right"] >= floor, checking


def test_every_small_talk_and_overview_of_the_checking_half_is_recognised(engine: Engine) -> None:
    questions = [
        q
        for q in load_questions(DATA / "news_qa.jsonl")
        if q.get("split") == "check" and q["kind"] in ("chat", "overview")
    ]
    result = evaluate(engine, questions)
    assert result.right == result.total, "\n".join(result.failures)


def test_dev_follow_up_conversations_are_understood(engine: Engine) -> None:
    result = evaluate(engine, load_questions(DATA / "dev_followup.jsonl"))
    assert result.right == result.total, "\n".join(result.failures)


def test_answer_quotes_the_article_with_a_cited_source(engine: Engine) -> None:
    answer = engine.answer("Who leads the Democratic Party of Kazakhstan?")
    assert answer.outcome is Outcome.ANSWERED
    assert "Mamai" in answer.text
    assert 1 <= len(answer.quotes) <= 2
    for sentence, n in answer.quotes:
        citation = answer.citations[n - 1]
        assert sentence in citation.passage
        assert f"{sentence} [{n}]" in answer.text
        assert citation.title and citation.publisher and citation.published
    assert re.fullmatch(r"(.+? \[\d\])( .+? \[\d\])*", answer.text)


def test_out_of_scope_question_abstains_without_sources(engine: Engine) -> None:
    for question in ("How do I bake sourdough bread?", "how do i cook pasta al dente"):
        answer = engine.answer(question)
        assert answer.outcome is Outcome.ABSTAINED, answer.text
        assert answer.text == NOT_COVERED_TEXT
        assert answer.citations == ()


def test_a_question_near_the_topic_is_never_answered_with_confidence(engine: Engine) -> None:
    # "capital" and "country" come close to a passage about a head of state: at most the closest passage, marked so.
    answer = engine.answer("What is the capital of France?")
    assert answer.outcome is Outcome.ABSTAINED, answer.text
    assert answer.text == NOT_COVERED_TEXT or answer.text.startswith(CLOSEST_PREFIX)


def test_follow_up_uses_the_conversation_and_new_forgets_it(engine: Engine) -> None:
    conversation = Conversation()
    engine.answer("Who is Zhanbolat Mamai?", conversation)
    follow_up = engine.answer("How long was he detained?", conversation)
    assert "three days" in follow_up.text
    conversation.reset()
    assert conversation.referents("How long was he detained?") == []


def test_tampered_model_weights_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.embedding.BUNDLED_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        SentenceTransformerEmbedder()


def _run_cli(workspace: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "CORPUS_DIR": str(workspace / "corpus"),
        "INDEX_DIR": str(workspace / "index"),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=workspace,
        env=environment,
        timeout=300,
        check=False,
    )


@pytest.fixture
def cli_workspace(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    yield tmp_path


def test_console_json_builds_a_missing_index_and_prints_one_line_per_question(cli_workspace: Path) -> None:
    questions = "Who is Zhanbolat Mamai?\nHow long was he detained?\n/new\nHow tall is Mount Everest?\n"
    result = _run_cli(cli_workspace, "console", "--json", stdin=questions)
    assert result.returncode == 0, result.stderr
    assert "no index has been built yet" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == [
        "Who is Zhanbolat Mamai?",
        "How long was he detained?",
        "How tall is Mount Everest?",
    ]
    for line in lines:
        assert set(line) == {
            "question",
            "understood",
            "answer",
            "outcome",
            "abstained",
            "confidence",
            "mode",
            "sentences",
            "citations",
        }
        assert line["mode"] == "extractive" and line["sentences"] == []  # the default: nothing is written
    assert "three days" in lines[1]["answer"]
    assert lines[0]["understood"] is None and lines[1]["understood"] == "How long was Zhanbolat Mamai detained?"
    assert set(lines[0]["citations"][0]) == {"n", "title", "publisher", "published", "url", "source", "passage"}
    assert lines[0]["citations"][0]["source"].endswith(".md")
    assert lines[2]["abstained"] is True and lines[2]["citations"] == []


def test_console_rebuilds_a_stale_index_and_says_so(cli_workspace: Path) -> None:
    assert _run_cli(cli_workspace, "build", "--quiet").returncode == 0
    (cli_workspace / "corpus" / "2021-01-new-article.md").write_text(
        "---\ntitle: Kazakh parliament election results\npublisher: Test Wire\npublished: 2021-01-11\n---\n\n"
        "The ruling Nur Otan party won 71 percent of the vote in the January 10 election, officials said.\n",
        encoding="utf-8",
    )
    result = _run_cli(cli_workspace, "console", stdin="What share of the vote did Nur Otan win?\n")
    assert result.returncode == 0, result.stderr
    assert "corpus changed" in result.stderr and "1 added" in result.stderr
    assert "71 percent" in result.stdout
    assert "Kazakh parliament election results — Test Wire, 11 January 2021" in result.stdout


@pytest.mark.slow  # minutes of the real model in a subprocess; `make test-slow`
def test_console_refuses_an_index_built_with_another_model(cli_workspace: Path) -> None:
    assert _run_cli(cli_workspace, "build", "--quiet").returncode == 0
    version = (cli_workspace / "index" / "CURRENT").read_text().strip()
    manifest_path = cli_workspace / "index" / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["fingerprint"] = "another-model"
    manifest_path.write_text(json.dumps(manifest))
    result = _run_cli(cli_workspace, "console", "--json", stdin="Who is Zhanbolat Mamai?\n")
    assert result.returncode == 1
    assert "Error:" in result.stderr and "build --full" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_eval_command_prints_a_table_per_kind_and_fails_below_the_bar(cli_workspace: Path) -> None:
    dev = str(DATA / "dev_qa.jsonl")
    result = _run_cli(cli_workspace, "eval", dev, "--min-right", "12")
    assert result.returncode == 0, result.stderr
    for column in ("fact", "paraphrase", "offtopic", "unanswerable", "false abst.", "wrong"):
        assert column in result.stdout
    assert re.search(r"right: 1[2-5]/15", result.stdout)
    failing = _run_cli(cli_workspace, "eval", dev, "--min-right", "16")
    assert failing.returncode == 1
    assert "fewer than the required 16" in failing.stderr


@pytest.mark.slow  # minutes of the real model in a subprocess; `make test-slow`
def test_eval_command_reads_squad_and_draws_the_curve(cli_workspace: Path, tmp_path: Path) -> None:
    """A SQuAD file gets a temporary index of its own; the curve is a PNG."""
    squad = json.loads((DATA / "squad2" / "squad2-normans-complexity.json").read_text(encoding="utf-8"))
    article = squad["data"][0]
    article["paragraphs"] = article["paragraphs"][:3]
    small = tmp_path / "small-squad.json"
    small.write_text(json.dumps({"version": "v2.0", "data": [article]}), encoding="utf-8")
    plot = tmp_path / "curve.png"
    result = _run_cli(cli_workspace, "eval", str(small), "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert "answerable" in result.stdout and "unanswerable" in result.stdout
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert not (cli_workspace / "index").exists(), "the project's own index is untouched"
