"""The console transport: an interactive REPL, plain answers for piped input, or one JSON line per question."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import click

from bot.conversation import Conversation
from bot.engine import Answer, Engine, SourceInfo
from bot.formatting import human_date, source_line

HELP = """Ask anything about the articles; answers quote them, with sources.
Follow-up questions ("When did she say that?") use the conversation so far.

  /new      forget the conversation and start afresh
  /sources  list the articles with their dates and links
  /help     show this help
  /quit     leave (Ctrl-D works too)"""
COMMANDS = ("/new", "/sources", "/help", "/quit", "/exit")


class Console:
    """Renders engine answers to a terminal or a pipe; holds one conversation."""

    def __init__(self, engine: Engine, out: IO[str], *, history_turns: int = 3, color: bool = False) -> None:
        self.engine = engine
        self.out = out
        self.conversation = Conversation(history_turns)
        self.color = color

    def handle_command(self, line: str) -> bool:
        """Run a /command; returns False when the user asked to leave."""
        command = line.split()[0].lower()
        if command in ("/quit", "/exit"):
            return False
        if command == "/new":
            self.conversation.reset()
            self._print(self._dim("Conversation cleared."))
        elif command == "/sources":
            self._print(self.render_sources())
        elif command == "/help":
            self._print(HELP)
        else:
            self._print(f"Unknown command {command}. Commands: {', '.join(COMMANDS[:4])}.")
        return True

    def handle(self, line: str) -> bool:
        """Answer a question or run a /command; returns False when the user asked to leave."""
        line = line.strip()
        if line.startswith("/"):
            return self.handle_command(line)
        if line:
            self.ask(line)
        return True

    def ask(self, question: str) -> Answer:
        answer = self.engine.answer(question, self.conversation)
        self._print(self.render_answer(answer))
        return answer

    def render_answer(self, answer: Answer) -> str:
        width = min(shutil.get_terminal_size((100, 20)).columns, 100)
        # Each line on its own: the note over a Russian answer and an overview's heading keep their own lines.
        body = "\n".join(textwrap.fill(line, width=width) for line in answer.text.splitlines())
        if not answer.citations:
            return body + "\n"
        lines = [body, ""]
        for citation in answer.citations:
            lines.append(self._bold(f"[{citation.n}] ") + source_line(citation))
            if citation.url:
                lines.append(f"    {self._link(citation.url)}")
        return "\n".join(lines) + "\n"

    def render_sources(self) -> str:
        sources = self.engine.sources()
        lines = [f"{len(sources)} articles:"]
        for number, source in enumerate(sources, 1):
            lines.append(f"{number}. {source_line(source)}")
            lines.append(f"   {self._link(source.url) if source.url else '(no link) ' + source.source}")
        return "\n".join(lines)

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _bold(self, text: str) -> str:
        return click.style(text, bold=True) if self.color else text

    def _dim(self, text: str) -> str:
        return click.style(text, dim=True) if self.color else text

    def _link(self, url: str) -> str:
        if not self.color:
            return url
        # OSC 8: terminals that support it make the URL clickable; the others show it as plain text.
        return f"\033]8;;{url}\033\\{click.style(url, fg='blue', underline=True)}\033]8;;\033\\"


def answer_json(answer: Answer) -> dict[str, Any]:
    """The `--json` line for one question."""
    return {
        "question": answer.question,
        "understood": answer.understood,
        "answer": answer.text,
        "outcome": answer.outcome.value,
        "abstained": answer.abstained,
        "confidence": None if answer.confidence is None else round(answer.confidence, 4),
        "mode": answer.mode,
        # Written answers: every sentence the model wrote, kept or dropped by the check, and why.
        "sentences": [
            {
                "text": v.text,
                "kept": v.kept,
                "why": v.why,
                "cited": list(v.cited),
                "overlap": v.overlap,
                "similarity": v.similarity,
            }
            for v in answer.audit
        ],
        "citations": [
            {
                "n": c.n,
                "title": c.title,
                "publisher": c.publisher,
                "published": c.published,
                "url": c.url,
                "source": c.source,
                "passage": c.passage,
            }
            for c in answer.citations
        ],
    }


def run_json(engine: Engine, lines: Iterable[str], out: IO[str], history_turns: int) -> None:
    """One JSON line per question; `/new` resets, `/sources` and `/help` print a JSON line of their own."""
    conversation = Conversation(history_turns)
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        record: dict[str, Any] | None
        if line.startswith("/"):
            command = line.split()[0].lower()
            if command in ("/quit", "/exit"):
                break
            if command == "/new":
                conversation.reset()
                record = None
            elif command == "/sources":
                record = {"command": command, "sources": [_source_json(s) for s in engine.sources()]}
            else:
                record = {"command": command, "help": HELP}
        else:
            record = answer_json(engine.answer(line, conversation))
        if record is not None:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()


def _source_json(source: SourceInfo) -> dict[str, Any]:
    return {
        "title": source.title,
        "publisher": source.publisher,
        "published": source.published,
        "url": source.url,
        "source": source.source,
    }


def run_plain(engine: Engine, lines: Iterable[str], out: IO[str], history_turns: int) -> None:
    """Piped input without --json: each answer as plain text, separated by blank lines."""
    console = Console(engine, out, history_turns=history_turns)
    for line in lines:
        if not console.handle(line):
            break


def run_repl(engine: Engine, history_turns: int) -> None:
    """The interactive console, with line editing and a history kept across sessions."""
    history = _enable_history()
    console = Console(engine, sys.stdout, history_turns=history_turns, color=True)
    click.echo(click.style("Ask about the articles", bold=True) + f" ({coverage(engine)}).")
    click.echo("/help for commands, /quit to leave.\n")
    try:
        while True:
            try:
                line = input(click.style("? ", fg="green", bold=True))
            except KeyboardInterrupt:
                click.echo()
                continue
            if not console.handle(line):
                break
    except EOFError:
        click.echo()
    finally:
        if history is not None:
            _save_history(history)


def coverage(engine: Engine) -> str:
    """ "2 articles, February 2020 to November 2020" """
    sources = engine.sources()
    dates = sorted(s.published for s in sources if s.published)
    span = ""
    if dates:
        first, last = human_date(dates[0]), human_date(dates[-1])
        span = f", {first}" if first == last else f", {first} to {last}"
    return f"{len(sources)} article{'s' if len(sources) != 1 else ''}{span}"


def _history_file() -> Path:
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "kazbot" / "history"


def _enable_history() -> Path | None:
    try:
        import readline
    except ImportError:  # Not every platform has readline; the console works without history.
        return None
    path = _history_file()
    with contextlib.suppress(OSError):  # No history yet.
        readline.read_history_file(path)
    readline.set_history_length(1000)
    return path


def _save_history(path: Path) -> None:
    import readline

    with contextlib.suppress(OSError):  # History is a convenience: never fail the session over it.
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
