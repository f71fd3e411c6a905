"""A room's bounded message history in Redis: ordered ids, an epoch, and replay for resume.

Every message a room accepts is stored before it is broadcast, under the next number of
the room's sequence (1, 2, 3, ...), in a Redis stream capped at ``max_messages`` entries.
The room's *epoch* is a random token created with its first message; when Redis loses the
room (a flush, a restart without persistence, ``idle_seconds`` without a message) the next
message starts a new epoch at 1. A client that names its epoch and last id gets everything
after it, or is told that some messages are gone (a *gap*): ids and epochs make every loss
visible. The design follows Centrifugo's history and recovery (streams with offsets and
an epoch).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from django.conf import settings
from django.utils.module_loading import import_string
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# A room whose bookkeeping vanished (or never existed) starts a new epoch with an empty
# stream: never old entries under a new epoch. KEYS: meta hash, stream. ARGV[1]: candidate epoch.
ENSURE_EPOCH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local created = false
if not epoch then
    epoch = ARGV[1]
    created = true
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
"""

# Store and number atomically: two replicas appending at once still get distinct, gapless
# ids. ARGV: candidate epoch, payload, max entries, lifetime in ms.
APPEND_SCRIPT = (
    ENSURE_EPOCH
    + """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {epoch, seq}
"""
)

# The room's epoch and last id, creating the epoch of an empty room so that a reader and
# the next writer agree on it. ARGV: candidate epoch, lifetime in ms.
POSITION_SCRIPT = (
    ENSURE_EPOCH
    + """
if created then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'seq'))}
"""
)


@dataclass(frozen=True)
class Stored:
    """Where an appended message landed: the room's epoch and the message's id in it."""

    epoch: str
    id: int


@dataclass
class Replay:
    """What a joining or resuming client is sent before live messages.

    ``gap`` is true when messages the client asked for are gone: its epoch is no longer the
    room's, or the history no longer reaches back to the id after its last one.
    """

    epoch: str
    last_id: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    gap: bool = False


class RoomHistory:
    """The history of every room, kept in one Redis under a key prefix."""

    def __init__(self, redis: Redis, prefix: str, max_messages: int, idle_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_messages = max_messages
        self.lifetime_ms = idle_seconds * 1000
        self._append = redis.register_script(APPEND_SCRIPT)
        self._position = redis.register_script(POSITION_SCRIPT)

    def keys(self, group: str) -> list[str]:
        """The Redis keys of a room: its bookkeeping hash and its stream."""
        return [f"{self.prefix}:history:{group}:meta", f"{self.prefix}:history:{group}:stream"]

    async def append(self, group: str, message: dict[str, Any]) -> Stored:
        """Store ``message`` as the room's next one; raises a redis error when it cannot be stored."""
        payload = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        epoch, seq = await self._append(
            keys=self.keys(group), args=[new_epoch(), payload, self.max_messages, self.lifetime_ms]
        )
        return Stored(_text(epoch), int(seq))

    async def replay(self, group: str, epoch: str | None, after: int | None, recent: int) -> Replay:
        """What a client should get on (re)joining.

        A new client (no ``epoch``) gets the ``recent`` last messages. A resuming client gets
        every message after ``after`` in its epoch, marked with a gap if some are gone.
        """
        current, last_id = await self._position(keys=self.keys(group), args=[new_epoch(), self.lifetime_ms])
        current = _text(current)
        last_id = int(last_id)
        if epoch is None or after is None:
            start = max(last_id - recent, 0)
            return Replay(current, last_id, await self._entries(group, start))
        if epoch != current:
            # Everything of the client's epoch after its last id is unknowable now; all that
            # this epoch holds is sent, after a gap.
            return Replay(current, last_id, await self._entries(group, 0), gap=True)
        if after >= last_id:
            return Replay(current, last_id)
        messages = await self._entries(group, after)
        first = messages[0]["seq"] if messages else last_id + 1
        return Replay(current, last_id, messages, gap=first != after + 1)

    async def _entries(self, group: str, after: int) -> list[dict[str, Any]]:
        """Stored messages with ids above ``after``, oldest first, each with its id as ``seq``."""
        stream = self.keys(group)[1]
        # redis-py's annotation covers every decoding option; this client returns bytes.
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await self.redis.xrange(stream, f"({after}-0", "+"))
        messages = []
        for entry_id, fields in entries:
            message = json.loads(fields[b"d"])
            message["seq"] = int(entry_id.split(b"-")[0])
            messages.append(message)
        return messages


class HistoryStore(Protocol):
    """What the consumer needs of a history: RoomHistory, or the unit tests' in-memory one."""

    async def append(self, group: str, message: dict[str, Any]) -> Stored: ...

    async def replay(self, group: str, epoch: str | None, after: int | None, recent: int) -> Replay: ...


_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HistoryStore] = weakref.WeakKeyDictionary()


def history_store() -> HistoryStore:
    """The history store of the running event loop (one Redis pool per loop, as channels_redis does)."""
    loop = asyncio.get_running_loop()
    store = _stores.get(loop)
    if store is None:
        store = import_string(settings.CHAT_HISTORY_STORE)()
        _stores[loop] = store
    return store


def redis_history() -> RoomHistory:
    """The production store: the channel layer's Redis, bounded as the settings say."""
    # Callers wait for a free connection rather than fail when many sockets write at once;
    # a Redis that does not answer fails them within seconds, and the sender is told.
    pool = BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=50,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
        # After Redis restarted, every pooled connection is dead: try once more on a fresh
        # one. Only on a refused or cut connection, where the command most likely never ran;
        # a timeout is not retried, since the message may have been stored.
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )
    return RoomHistory(
        Redis(connection_pool=pool),
        settings.CHANNEL_LAYER_PREFIX,
        settings.CHAT_HISTORY_MAX_MESSAGES,
        settings.CHAT_HISTORY_IDLE_SECONDS,
    )


def new_epoch() -> str:
    """A fresh epoch token: short, random, safe in JSON and URLs."""
    return secrets.token_urlsafe(6)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
