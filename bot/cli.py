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


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"invalid settings ({problems}); see .env.example") from None


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
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
@user_errors
def build(full: bool, quiet: bool) -> None:
    """Rebuild the index from the corpus folder (incremental and atomic)."""
    settings = _settings()
    _setup_logging(settings)
    from tqdm import tqdm

    from bot.build import build_index
    from bot.service import load_embedder

    embedder = load_embedder(settings)

    def progress(total: int) -> Any:
        return tqdm(total=total, unit="article", desc="Embedding", disable=quiet, file=sys.stderr)

    report = build_index(
        settings.corpus_dir, settings.index_dir, embedder, settings.chunking, full=full, progress=progress
    )
    click.echo(report.summary())


def _report_rebuild(reason: str, report: BuildReport) -> None:
    click.echo(f"Rebuilt the index because {reason}.\n{report.summary()}", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Read questions from stdin, print one JSON line each.")
@user_errors
def console(as_json: bool) -> None:
    """Ask questions in the terminal (a REPL; piped input is answered line by line)."""
    settings = _settings()
    _setup_logging(settings)
    from bot import console as transport
    from bot.service import load_embedder, open_engine

    settings.llm()  # Incomplete written-answer settings are reported before the model loads.
    interactive = sys.stdin.isatty() and not as_json
    if interactive:
        click.echo("Loading the model and the index…", err=True)
    engine = open_engine(settings, load_embedder(settings), on_rebuild=_report_rebuild)
    if as_json:
        transport.run_json(engine, sys.stdin, sys.stdout, settings.history_turns)
    elif interactive:
        transport.run_repl(engine, settings.history_turns)
    else:
        transport.run_plain(engine, sys.stdin, sys.stdout, settings.history_turns)


@cli.command(name="eval")
@click.argument("question_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--min-right", type=int, default=None, help="Exit with status 1 when fewer questions are right.")
@click.option("--verbose", "-v", is_flag=True, help="Show every question that went wrong.")
@user_errors
def evaluate(question_file: Path, min_right: int | None, verbose: bool) -> None:
    """Score the answers to a question file (answered right, right source, abstained right).

    Given the Telegram bot's feedback file (FEEDBACK_FILE), report the votes and ask every 👎 question again.
    """
    settings = _settings()
    _setup_logging(settings)
    from bot.evaluate import evaluate as run_eval
    from bot.evaluate import feedback_report, load_questions
    from bot.feedback import read_feedback
    from bot.service import load_embedder, open_engine

    settings.llm()
    votes = read_feedback(question_file)
    questions = [] if votes else load_questions(question_file)
    engine = open_engine(settings, load_embedder(settings), on_rebuild=_report_rebuild)
    if votes:
        click.echo(feedback_report(engine, votes))
        return
    result = run_eval(engine, questions, settings.history_turns)
    click.echo(result.table())
    if verbose or (min_right is not None and result.right < min_right):
        for failure in result.failures:
            click.echo(f"  wrong: {failure}")
    if min_right is not None and result.right < min_right:
        raise click.ClickException(f"{result.right} right, fewer than the required {min_right}")


@cli.command()
@user_errors
def telegram() -> None:
    """Run the Telegram bot (long polling, or a webhook when WEBHOOK_URL is set)."""
    settings = _settings()
    _setup_logging(settings)
    from telegram.error import InvalidToken

    from bot.service import load_embedder, open_engine
    from bot.telegram.app import run

    settings.telegram_token()  # A missing or malformed token is reported before the model loads.
    settings.webhook()
    settings.llm()

    def load_engine() -> Engine:
        return open_engine(settings, load_embedder(settings), on_rebuild=_report_rebuild)

    try:
        run(settings, load_engine)
    except InvalidToken:
        raise click.ClickException("Telegram refused TELEGRAM_BOT_TOKEN: check it with @BotFather") from None
