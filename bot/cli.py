"""`python -m bot <command>`: build the index, use the console, score a question file, run the Telegram bot."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from bot.build import BuildReport
from bot.config import Settings
from bot.engine import Engine
from bot.errors import BotError

F = TypeVar("F", bound=Callable[..., Any])

# Exit statuses of `python -m bot build` (README, "Commands"): 1 is any error (nothing was published),
# 2 a usage error (click's), and 3 a build that was published but skipped some files.
EXIT_SKIPPED = 3


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"invalid settings ({problems}); see .env.example") from None


def log_level(settings: Settings, unless_set: str = "INFO") -> str:
    """The level to log at: LOG_LEVEL when it is set, else the command's own default."""
    return (settings.log_level if "log_level" in settings.model_fields_set else unless_set).upper()


def _setup_logging(settings: Settings, unless_set: str = "INFO") -> None:
    logging.basicConfig(
        level=log_level(settings, unless_set),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and Telegram URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the openai SDK's HTTP client
    # The openai SDK logs request options at DEBUG.
    logging.getLogger("openai").setLevel(max(logging.INFO, logging.getLogger().level))
    if settings.llm_api_key is not None:
        from bot.logs import install_redaction

        install_redaction(settings.llm_api_key.get_secret_value())
    if settings.database_url is not None:
        from bot.config import database_password
        from bot.logs import install_redaction

        # psycopg never prints a URL's password, but a library's log line might: redact it anyway.
        install_redaction(database_password(settings.database_url.get_secret_value()))
    for noisy in ("sentence_transformers", "transformers", "faiss", "bm25s", "trafilatura", "htmldate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not settings.log_questions:
        # At DEBUG, python-telegram-bot logs whole updates, and with them what users wrote.
        logging.getLogger("telegram").setLevel(max(logging.INFO, logging.getLogger().level))


def user_errors(function: F) -> F:
    """Turn our own errors into a clean `Error: ...` line and exit code 1, never a traceback."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BotError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Answer questions about a body of news articles, with citations."""


@cli.command()
@click.option("--full", is_flag=True, help="Rebuild from scratch instead of re-embedding only what changed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--strict", is_flag=True, help="Fail (status 1, nothing published) when any file would be skipped.")
@user_errors
def build(full: bool, quiet: bool, strict: bool) -> None:
    """Rebuild the index from the corpus folder (incremental and atomic); with DATABASE_URL set, the
    PostgreSQL store instead (incremental, published in one transaction).

    Exit status: 0 built (or up to date) with every file; 3 built, but some files were skipped (named in the
    summary); 1 failed, nothing published (with --strict, also when a file would be skipped).
    """
    settings = _settings()
    _setup_logging(settings)
    from tqdm import tqdm

    from bot.service import build_store, load_embedder, multilingual_model

    settings.database()  # A malformed DATABASE_URL is reported before the model loads.
    embedder = load_embedder(settings)

    def progress(total: int) -> Any:
        return tqdm(total=total, unit="article", desc="Embedding", disable=quiet, file=sys.stderr)

    report = build_store(
        settings, embedder, full=full, progress=progress, strict=strict, multilingual=multilingual_model(settings)
    )
    click.echo(report.summary())
    if report.skipped:
        click.echo(
            f"{len(report.skipped)} file(s) skipped: see the reasons above (exit status {EXIT_SKIPPED})", err=True
        )
        sys.exit(EXIT_SKIPPED)


@cli.command()
@click.option("--version", "version", default=None, help="Check this index version instead of the one in use.")
@user_errors
def verify(version: str | None) -> None:
    """Hash every file of the index against its manifest (status 1 when any is missing or altered).

    Opening an index hashes its small files only and checks the large ones by size and modification time; this
    reads every byte, for a cron job or after copying an index.
    """
    from bot.store import verify_version

    checked = verify_version(_settings().index_dir, version)
    click.echo(f"Index {checked}: every file matches the SHA-256 its manifest recorded")


def _report_rebuild(reason: str, report: BuildReport) -> None:
    click.echo(f"Rebuilt the index because {reason}.\n{report.summary()}", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Read questions from stdin, print one JSON line each.")
@user_errors
def console(as_json: bool) -> None:
    """Ask questions in the terminal (a REPL; piped input is answered line by line)."""
    settings = _settings()
    # The console reports rebuilds itself: its user sees warnings, not the service's progress lines.
    _setup_logging(settings, unless_set="WARNING")
    from bot import console as transport
    from bot.service import load_embedder, multilingual_model, open_engine

    settings.llm()  # Incomplete written-answer settings are reported before the model loads.
    interactive = sys.stdin.isatty() and not as_json
    if interactive:
        click.echo("Loading the model and the index…", err=True)
    engine = open_engine(
        settings, load_embedder(settings), on_rebuild=_report_rebuild, multilingual=multilingual_model(settings)
    )
    if as_json:
        transport.run_json(engine, sys.stdin, sys.stdout, settings.history_turns)
    elif interactive:
        transport.run_repl(engine, settings.history_turns)
    else:
        transport.run_plain(engine, sys.stdin, sys.stdout, settings.history_turns)


@cli.command(name="eval")
@click.argument("question_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["fit", "check"]), default=None, help="Only the questions of this half.")
@click.option("--min-right", type=int, default=None, help="Exit with status 1 when fewer questions are right.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw the precision-coverage curve of the abstention score into this PNG file.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show every question that went wrong.")
@user_errors
def evaluate(question_file: Path, split: str | None, min_right: int | None, plot: Path | None, verbose: bool) -> None:
    """Score the answers to a question file, per kind: right, answered right, right source, abstained right,
    false abstentions and wrong answers.

    QUESTION_FILE is our JSON Lines (tests/data/news_qa.jsonl) or a SQuAD 2.0 JSON file; for SQuAD, a
    temporary index of its articles is built. Given the Telegram bot's feedback file (FEEDBACK_FILE), report
    the votes and ask every 👎 question again.
    """
    settings = _settings()
    _setup_logging(settings)
    import tempfile

    from bot.evaluate import evaluate as run_eval
    from bot.evaluate import (
        feedback_report,
        is_squad,
        load_questions,
        load_squad,
        plot_curves,
        precision_coverage,
        write_corpus,
    )
    from bot.feedback import read_feedback
    from bot.service import load_embedder, multilingual_model, open_engine

    settings.llm()
    embedder = load_embedder(settings)
    multilingual = multilingual_model(settings)
    with tempfile.TemporaryDirectory(prefix="kazbot-eval-") as tmp:
        if is_squad(question_file):
            articles, questions = load_squad(question_file)
            write_corpus(articles, Path(tmp) / "corpus")
            # A temporary index directory, never the shared database: SQuAD's articles are not the news.
            temporary = settings.model_copy(
                update={"corpus_dir": Path(tmp) / "corpus", "index_dir": Path(tmp) / "index", "database_url": None}
            )
            engine = open_engine(temporary, embedder, on_rebuild=lambda reason, report: None, multilingual=multilingual)
        else:
            votes = read_feedback(question_file)
            engine = open_engine(settings, embedder, on_rebuild=_report_rebuild, multilingual=multilingual)
            if votes:
                click.echo(feedback_report(engine, votes))
                return
            questions = load_questions(question_file)
        if split:
            questions = [q for q in questions if q.get("split") == split]
        result = run_eval(engine, questions, settings.history_turns)
    click.echo(result.table())
    if plot is not None:
        threshold = engine.live.current()[1].params.answer_threshold
        label = f"{question_file.name}{f' ({split})' if split else ''}"
        plot_curves({label: precision_coverage(result.judged)}, threshold, plot, f"Abstention score on {label}")
        click.echo(f"precision-coverage curve written to {plot}")
    if verbose or (min_right is not None and result.right < min_right):
        for failure in result.failures:
            click.echo(f"  wrong: {failure}")
    if min_right is not None and result.right < min_right:
        raise click.ClickException(f"{result.right} right, fewer than the required {min_right}")


@cli.command()
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("tests/data"),
    show_default=True,
    help="Folder with squad2/, news/ and the news question files.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw the checking data's precision-coverage curves into this PNG file.",
)
@user_errors
def fit(data: Path, plot: Path | None) -> None:
    """Fit the answer scorer on the fitting data, check it on the checking data, write bot/scorer.json."""
    settings = _settings()
    _setup_logging(settings)
    from bot.fit import run_fit
    from bot.service import load_embedder

    click.echo(run_fit(load_embedder(settings), data, settings.chunking, plot=plot))


@cli.command()
@user_errors
def telegram() -> None:
    """Run the Telegram bot (long polling, or a webhook when WEBHOOK_URL is set)."""
    settings = _settings()
    _setup_logging(settings)
    from telegram.error import InvalidToken, NetworkError, TelegramError

    from bot.service import load_embedder, multilingual_model, open_engine
    from bot.telegram.app import run

    settings.telegram_token()  # A missing or malformed token is reported before the model loads.
    settings.webhook()
    settings.llm()

    def load_engine() -> Engine:
        return open_engine(
            settings, load_embedder(settings), on_rebuild=_report_rebuild, multilingual=multilingual_model(settings)
        )

    token = settings.telegram_token()
    try:
        run(settings, load_engine)
    except InvalidToken:
        raise click.ClickException("Telegram refused TELEGRAM_BOT_TOKEN: check it with @BotFather") from None
    except NetworkError as exc:
        detail = str(exc).replace(token, "[REDACTED]")
        raise click.ClickException(
            f"cannot reach the Telegram Bot API at {settings.telegram_base_url} ({detail}); check the network"
        ) from None
    except TelegramError as exc:
        raise click.ClickException(f"Telegram: {str(exc).replace(token, '[REDACTED]')}") from None
