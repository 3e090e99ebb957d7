"""Bad input in the corpus: legacy encodings, duplicates, links out of the folder, files that change while the
build reads them, the size limit, and the exit statuses of `python -m bot build` (through the real click CLI,
in process, on the fake embedder)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fakes import FakeEmbedder, write_article

import bot.build
import bot.corpus
import bot.service
from bot import store
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.cli import EXIT_SKIPPED, cli
from bot.config import Settings
from bot.corpus import CorpusFile, load_article, load_corpus, scan
from bot.errors import ArticleError

SETTINGS = ChunkingSettings()
RUSSIAN = (
    "Центральная избирательная комиссия Казахстана объявила итоги выборов в парламент. "
    "Оппозиционные активисты были задержаны в Алматы в субботу, сообщили правозащитники.\n\n"
    "Наблюдатели отметили, что явка избирателей была низкой во всех регионах страны."
)
FRENCH = (
    "Le président a déclaré que l'élection était équitable et que les électeurs étaient très nombreux.\n\n"
    "À Almaty, la police a arrêté des manifestants qui réclamaient des réformes économiques."
)
BODY = "The council met on Thursday to discuss the new tram line. It approved the budget after a long debate."


def _indexed_texts(index_dir: Path) -> str:
    loaded = store.open_index(index_dir)
    return "\n".join(document.text for document in loaded.data.documents)


def _load(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return load_article(CorpusFile(path.parent, path.name, digest, path.stat().st_size)).text


# Legacy encodings ---------------------------------------------------------------------------------------------


def test_a_cp1251_russian_article_is_detected_and_decoded(tmp_path: Path) -> None:
    path = tmp_path / "ru.txt"
    path.write_bytes(("Выборы в Казахстане\n\n" + RUSSIAN).encode("cp1251"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the premise: this really is not UTF-8
    text = _load(path)
    assert "избирательная комиссия Казахстана" in text
    assert "явка избирателей" in text


def test_a_latin1_markdown_article_keeps_its_front_matter_and_accents(tmp_path: Path) -> None:
    path = tmp_path / "fr.md"
    path.write_bytes(("---\ntitle: Élection à Almaty\n---\n\n" + FRENCH).encode("latin-1"))
    article = load_article(CorpusFile(path.parent, "fr.md", hashlib.sha256(path.read_bytes()).hexdigest(), 1))
    assert article.title == "Élection à Almaty"
    assert "Le président a déclaré que l'élection était équitable" in article.text


@pytest.mark.filterwarnings("ignore:SOCKS support:Warning")
@pytest.mark.parametrize("meta", ['<meta charset="iso-8859-1">', ""], ids=["declared", "undeclared"])
def test_a_latin1_html_page_is_decoded(tmp_path: Path, meta: str) -> None:
    page = (
        f"<html><head>{meta}<title>Élection à Almaty</title></head><body><article>"
        + "".join(f"<p>{paragraph}</p>" for paragraph in FRENCH.split("\n\n"))
        + "</article></body></html>"
    )
    path = tmp_path / "fr.html"
    path.write_bytes(page.encode("latin-1"))
    text = _load(path)
    assert "l'élection était équitable" in text
    assert "Ã" not in text  # no mojibake


def test_text_whose_encoding_cannot_be_told_is_skipped_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_bytes("Привет мир".encode("cp1251"))  # too short to tell cp1251 from its neighbours
    with pytest.raises(ArticleError, match="could not be detected with confidence"):
        _load(path)


# Duplicates ---------------------------------------------------------------------------------------------------


def test_the_same_article_under_two_names_is_indexed_once_and_named(
    corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    original = sorted(corpus_dir.glob("*.md"))[0]
    copy = corpus_dir / "zz-copy-of-the-first.md"
    # The same article, saved again with other line ends and trailing spaces.
    copy.write_bytes(original.read_bytes().replace(b"\n", b"  \r\n"))
    report = build_index(corpus_dir, index_dir, fake_embedder, SETTINGS)
    assert report.duplicates == {copy.name: original.name}
    assert report.documents == 2 and copy.name not in report.added
    assert f"duplicate {copy.name}: the same article as {original.name}" in report.summary()
    assert not report.skipped
    documents = [d.doc_id for d in store.open_index(index_dir).data.documents]
    assert documents.count(original.name) == 1 and copy.name not in documents
    # Still named when the index is up to date, and not embedded when it turns up in an incremental build.
    again = build_index(corpus_dir, index_dir, fake_embedder, SETTINGS)
    assert again.up_to_date and again.duplicates == {copy.name: original.name}


def test_a_duplicate_added_later_is_not_embedded(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    original = sorted(corpus_dir.glob("*.md"))[-1]
    shutil.copy2(original, corpus_dir / "zz-again.md")
    report = build_index(corpus_dir, built_index, fake_embedder, SETTINGS)
    assert report.duplicates == {"zz-again.md": original.name}
    assert fake_embedder.texts_embedded == 0
    assert report.added == [] and report.removed == []


# Links and paths out of the corpus -----------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the corpus holding a secret the bot must never read."""
    folder = tmp_path / "outside"
    write_article(folder, "secret.md", "The vault code is SECRET-4711-OMEGA. Nobody should ever read it.")
    return folder


def test_symbolic_links_out_of_the_corpus_are_not_followed(
    corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder, outside: Path
) -> None:
    (corpus_dir / "linked.md").symlink_to(outside / "secret.md")
    (corpus_dir / "linked-folder").symlink_to(outside, target_is_directory=True)
    (corpus_dir / "inside-link.md").symlink_to(sorted(corpus_dir.glob("*.md"))[0])
    report = build_index(corpus_dir, index_dir, fake_embedder, SETTINGS)
    assert set(report.skipped) == {"linked.md", "inside-link.md"}
    assert all("symbolic link" in reason for reason in report.skipped.values())
    assert not any(name.startswith("linked-folder") for name in report.skipped)
    assert "SECRET-4711" not in _indexed_texts(index_dir)
    assert not any("SECRET-4711" in text for text in fake_embedder.texts)


def test_a_file_replaced_by_a_link_after_the_scan_is_not_read(tmp_path: Path, outside: Path) -> None:
    corpus = tmp_path / "corpus"
    path = write_article(corpus, "swapped.md", BODY, title="Swapped")
    [file] = scan(corpus)
    path.unlink()
    path.symlink_to(outside / "secret.md")
    with pytest.raises(ArticleError, match="symbolic link"):
        load_article(file)


def test_paths_written_in_an_article_are_never_opened(
    corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder, outside: Path
) -> None:
    relative = os.path.relpath(outside / "secret.md", corpus_dir)
    write_article(
        corpus_dir,
        "refers-out.md",
        f"See [the file]({relative}) and ![image](../outside/secret.md) and <img src='file://{outside}/secret.md'>. "
        "The mayor opened a bridge on Monday.",
        title="Refers out",
        url=f"file://{outside}/secret.md",
    )
    (corpus_dir / "refers-out.html").write_text(
        f"<html><head><link rel='canonical' href='../outside/secret.md'></head><body><article><p>"
        f"<iframe src='{relative}'></iframe>The governor visited the harbour on Friday to open the new pier "
        "for fishing boats.</p></article></body></html>",
        encoding="utf-8",
    )
    build_index(corpus_dir, index_dir, fake_embedder, SETTINGS)
    assert "SECRET-4711" not in _indexed_texts(index_dir)
    assert not any("SECRET-4711" in text for text in fake_embedder.texts)
    assert all(d.url is None or not d.url.startswith("file:") for d in store.open_index(index_dir).data.documents)


# Files that change while the build reads them ------------------------------------------------------------------


def _changing(monkeypatch: pytest.MonkeyPatch, name: str, change: Callable[[Path], object]) -> None:
    """Make `change(path)` happen to the file `name` between the scan and the read."""
    real = bot.corpus.load_article

    def load(file: CorpusFile, max_bytes: int) -> object:
        if file.name == name:
            change(file.path)
        return real(file, max_bytes)

    monkeypatch.setattr(bot.build, "load_article", load)


def test_a_file_deleted_during_the_build_is_left_out_and_the_rest_builds(
    corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_article(corpus_dir, "going.md", BODY, title="Going")
    _changing(monkeypatch, "going.md", Path.unlink)
    report = build_index(corpus_dir, index_dir, fake_embedder, SETTINGS)
    assert report.skipped == {} and "going.md" not in report.added
    assert [d.doc_id for d in store.open_index(index_dir).data.documents] == sorted(
        p.name for p in corpus_dir.glob("*.md")
    )
    settings = Settings(_env_file=None, corpus_dir=corpus_dir, index_dir=index_dir)  # type: ignore[call-arg]
    assert (
        store.open_index(index_dir).manifest.stale_reason(settings.corpus_dir, settings.chunking) is None
    )  # the file is gone now


def test_a_file_rewritten_during_the_build_is_indexed_as_read(
    corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_article(corpus_dir, "moving.md", BODY, title="Moving")
    rewritten = "The harbour master said the ferry to Aktau will sail twice a week from June."

    def rewrite(target: Path) -> None:
        write_article(target.parent, target.name, rewritten, title="Moving")

    _changing(monkeypatch, "moving.md", rewrite)
    report = build_index(corpus_dir, index_dir, fake_embedder, SETTINGS)
    assert not report.skipped
    loaded = store.open_index(index_dir)
    [document] = [d for d in loaded.data.documents if d.doc_id == "moving.md"]
    assert document.text == rewritten and "tram line" not in document.text
    assert document.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    # The index describes the corpus as it now is: no needless rebuild, and the next build has nothing to do.
    settings = Settings(_env_file=None, corpus_dir=corpus_dir, index_dir=index_dir)  # type: ignore[call-arg]
    assert loaded.manifest.stale_reason(settings.corpus_dir, settings.chunking) is None
    monkeypatch.undo()
    assert build_index(corpus_dir, index_dir, fake_embedder, SETTINGS).up_to_date


def test_a_file_that_grows_past_the_limit_during_the_build_is_skipped(
    corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_article(corpus_dir, "growing.md", BODY, title="Growing")
    limit = max(path.stat().st_size for path in corpus_dir.iterdir()) + 100

    def grow(target: Path) -> None:
        with target.open("a", encoding="utf-8") as stream:
            stream.write("More words. " * limit)

    _changing(monkeypatch, "growing.md", grow)
    report = build_index(corpus_dir, index_dir, fake_embedder, SETTINGS, max_article_bytes=limit)
    assert "too large" in report.skipped["growing.md"]
    assert report.documents == 2


def test_the_size_limit_is_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_ARTICLE_BYTES", "1000")
    assert Settings(_env_file=None).max_article_bytes == 1000  # type: ignore[call-arg]
    write_article(tmp_path, "big.md", BODY * 20, title="Big")
    write_article(tmp_path, "small.md", BODY, title="Small")
    articles, skipped = load_corpus(tmp_path, max_bytes=1000)
    assert [a.doc_id for a in articles] == ["small.md"]
    assert "too large" in skipped["big.md"] and "MAX_ARTICLE_BYTES" in skipped["big.md"]


# Exit statuses of `python -m bot build` -----------------------------------------------------------------------


@pytest.fixture
def run_build(
    corpus_dir: Path, index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Result]]:
    """`python -m bot build ARGS` in process, on the fake embedder, over `corpus_dir` into `index_dir`."""
    for key in list(os.environ):
        if key.upper() in {name.upper() for name in Settings.model_fields}:
            monkeypatch.delenv(key)
    monkeypatch.setenv("CORPUS_DIR", str(corpus_dir))
    monkeypatch.setenv("INDEX_DIR", str(index_dir))
    monkeypatch.chdir(tmp_path)  # no .env from the project
    monkeypatch.setattr(bot.service, "load_embedder", lambda settings: FakeEmbedder())

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["build", "--quiet", *args], catch_exceptions=False)

    yield run


def test_build_exit_status_is_zero_when_nothing_was_skipped(run_build: Callable[..., Result], index_dir: Path) -> None:
    result = run_build()
    assert result.exit_code == 0, result.output
    assert "Built index" in result.output and store.current_version(index_dir)


def test_build_exit_status_names_skipped_files(
    run_build: Callable[..., Result], corpus_dir: Path, index_dir: Path
) -> None:
    (corpus_dir / "empty.md").write_bytes(b"")
    result = run_build()
    assert result.exit_code == EXIT_SKIPPED == 3, result.output
    assert "skipped empty.md: empty file" in result.output
    assert store.current_version(index_dir)  # published all the same
    again = run_build()
    assert again.exit_code == EXIT_SKIPPED and "up to date" in again.output  # still skipped: still noticed


def test_strict_build_fails_on_a_skip_and_publishes_nothing(
    run_build: Callable[..., Result], corpus_dir: Path, index_dir: Path
) -> None:
    assert run_build().exit_code == 0
    before = store.current_version(index_dir)
    write_article(corpus_dir, "new.md", BODY, title="New")
    (corpus_dir / "broken.md").write_bytes(b"---\ntitle: [unclosed\n---\n\nText.")
    result = run_build("--strict")
    assert result.exit_code == 1, result.output
    assert "--strict" in result.output and "broken.md" in result.output and "Traceback" not in result.output
    assert store.current_version(index_dir) == before
    assert [p.name for p in index_dir.glob(".build-*")] == []
    (corpus_dir / "broken.md").unlink()
    assert run_build("--strict").exit_code == 0
    assert store.current_version(index_dir) != before
