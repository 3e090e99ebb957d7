"""What the bot keeps in memory between updates, each piece bounded so that no chat can grow it forever."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.conversation import Conversation
from bot.engine import Answer

_UNBOUNDED = 1_000_000
K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A mapping that forgets its least recently used entries past `capacity`, and entries older than `ttl`."""

    def __init__(self, capacity: int, ttl: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        stored, value = item
        if self._ttl is not None and self._clock() - stored > self._ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = (self._clock(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def touch(self, key: K) -> None:
        """Restart an entry's time to live (a chat that keeps talking keeps its memory)."""
        item = self._items.get(key)
        if item is not None:
            self._items[key] = (self._clock(), item[1])

    def __len__(self) -> int:
        return len(self._items)


class ChatMemory:
    """One conversation per chat: bounded in count, forgotten after a quiet spell."""

    def __init__(self, turns: int, chats: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._turns = turns
        self._conversations: BoundedCache[int, Conversation] = BoundedCache(chats, ttl_seconds, clock)

    def for_chat(self, chat_id: int) -> Conversation:
        conversation = self._conversations.get(chat_id)
        if conversation is None:
            conversation = Conversation(self._turns)
            self._conversations.put(chat_id, conversation)
        else:
            self._conversations.touch(chat_id)
        return conversation

    def forget(self, chat_id: int) -> None:
        self.for_chat(chat_id).reset()


class RateLimiter:
    """At most `limit` events per key in any `period` seconds (a sliding window)."""

    def __init__(self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._period = period
        self._clock = clock
        self._events: BoundedCache[int, deque[float]] = BoundedCache(100_000)

    def retry_after(self, key: int) -> float:
        """0 when the event may happen now (and it is counted); otherwise seconds until it may."""
        now = self._clock()
        events = self._events.get(key) or deque()
        while events and now - events[0] >= self._period:
            events.popleft()
        if len(events) >= self._limit:
            return self._period - (now - events[0])
        events.append(now)
        self._events.put(key, events)
        return 0.0


@dataclass
class AnswerStore:
    """Recent answers by a short id, so that buttons can carry ids instead of payloads."""

    capacity: int = 5_000
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Ids are only unique within a process: a random prefix keeps a button sent before a restart from
    # finding another answer that reused its number.
    _prefix: str = field(default_factory=lambda: secrets.token_hex(3))
    _answers: BoundedCache[str, Answer] = field(init=False)

    def __post_init__(self) -> None:
        self._answers = BoundedCache(self.capacity)

    def add(self, answer: Answer) -> str:
        key = f"{self._prefix}{next(self._ids):x}"
        self._answers.put(key, answer)
        return key

    def get(self, key: str) -> Answer | None:
        return self._answers.get(key)


class SeenUpdates:
    """The ids of recent updates: Telegram may deliver one twice (a webhook retry), we answer it once."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._seen: BoundedCache[int, bool] = BoundedCache(capacity)

    def first_time(self, update_id: int) -> bool:
        if self._seen.get(update_id):
            return False
        self._seen.put(update_id, True)
        return True


@dataclass
class Stats:
    questions: int = 0
    answered: int = 0
    abstained: int = 0
    rejected: int = 0
    rate_limited: int = 0


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Updates of different chats run concurrently; those of one chat run one after another, in order.

    PTB takes its concurrency slot before `do_process_update` runs, so a chat with many queued updates would
    hold every slot while they wait for the chat's lock. PTB's bound is therefore left effectively open, and
    `max_concurrent_updates` bounds only updates that hold their chat's lock.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(_UNBOUNDED)
        self._working = asyncio.BoundedSemaphore(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            async with self._working:
                await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._waiting[chat.id] = self._waiting.get(chat.id, 0) + 1
        try:
            async with lock, self._working:
                await coroutine
        finally:
            self._waiting[chat.id] -= 1
            if not self._waiting[chat.id]:  # Drop idle chats' locks, so the dict stays small.
                del self._waiting[chat.id]
                del self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""
