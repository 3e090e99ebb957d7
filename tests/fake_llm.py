"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests of written answers (no key, no model).

``FakeLLM`` serves ``POST /v1/chat/completions`` with the standard library's HTTP server, so the real ``openai``
client talks to it through its normal HTTP stack. Each request takes the next scripted ``Reply`` (or, when the
script is empty, ``default``):

- ``Reply.text("...")``: a JSON completion, or a stream of Server-Sent Events when the request asks for one
  (the text cut into ``chunk``-character deltas, ``data: [DONE]`` last);
- ``Reply.error(status, body)``: an HTTP error with a JSON body;
- ``Reply.hang(seconds)``: nothing at all for that long (the client's timeout fires first), then the connection
  closes; ``Reply.stall(text, after)``: a stream that sends ``after`` characters, then stalls;
- ``Reply.close()``: the connection closes without an answer.

A streamed ``Reply.ok`` with a ``gate`` pauses after ``gate_after`` characters until the test sets the gate, so
a test can see what was shown mid-stream without any timing.

Every request is recorded in ``requests`` (path, headers, JSON body) for assertions on the prompt.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self


@dataclass(frozen=True)
class Reply:
    kind: Literal["text", "error", "hang", "close", "stall"]
    text: str = ""
    status: int = 200
    body: str = ""
    seconds: float = 0.0
    chunk: int = 12
    gate: threading.Event | None = None  # a stream waits for it once `gate_after` characters are out
    gate_after: int = 0

    @classmethod
    def ok(cls, text: str, chunk: int = 12, gate: threading.Event | None = None, gate_after: int = 0) -> Reply:
        return cls("text", text=text, chunk=chunk, gate=gate, gate_after=gate_after)

    @classmethod
    def error(cls, status: int, body: str = '{"error": {"message": "boom", "type": "server_error"}}') -> Reply:
        return cls("error", status=status, body=body)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        return cls("hang", seconds=seconds)

    @classmethod
    def stall(cls, text: str, after: int, seconds: float = 30.0) -> Reply:
        return cls("stall", text=text, chunk=after, seconds=seconds)

    @classmethod
    def close(cls) -> Reply:
        return cls("close")


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = self.body.get("messages", [])
        return messages

    @property
    def prompt(self) -> str:
        """The last user message: passages and question."""
        return self.messages[-1]["content"]


@dataclass
class FakeLLM:
    model: str = "fake-model"
    default: Callable[[Request], Reply] = field(default=lambda request: Reply.error(500))
    requests: list[Request] = field(default_factory=list)
    _script: list[Reply] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        request = Request(handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(request)
            reply = self._script.pop(0) if self._script else None
        if reply is None:
            reply = self.default(request)
        if not handler.path.endswith("/chat/completions"):
            reply = Reply.error(404, '{"error": {"message": "not found"}}')
        if reply.kind == "close":
            handler.close_connection = True
            return
        if reply.kind == "hang" or (reply.kind == "stall" and not body.get("stream")):
            self._stopping.wait(reply.seconds)
            handler.close_connection = True
            return
        if reply.kind == "error":
            self._send(handler, reply.status, reply.body.encode(), "application/json")
            return
        if body.get("stream"):
            self._stream(handler, reply)
            return
        completion = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        self._send(handler, 200, json.dumps(completion).encode(), "application/json")

    def _stream(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        text = reply.text[: reply.chunk] if reply.kind == "stall" else reply.text
        step = max(1, reply.chunk)
        pieces = [text[i : i + step] for i in range(0, len(text), step)]
        try:
            sent = 0
            for piece in pieces:
                if reply.gate is not None and sent >= reply.gate_after:
                    reply.gate.wait(10)  # the test lets the rest through once it has seen what it waits for
                self._event(handler, {"delta": {"content": piece}, "finish_reason": None})
                sent += len(piece)
            if reply.kind == "stall":
                self._stopping.wait(reply.seconds)
                return
            self._event(handler, {"delta": {}, "finish_reason": "stop"})
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except OSError:
            return

    def _event(self, handler: BaseHTTPRequestHandler, choice: dict[str, Any]) -> None:
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, **choice}],
        }
        handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        handler.wfile.flush()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
