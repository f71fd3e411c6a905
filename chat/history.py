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
# ids. The append is idempotent: KEYS[3] remembers where the message (ARGV[5], a server-made
# id) landed, so a retry after a cut connection, when the first try did run, stores nothing
# twice. ARGV: candidate epoch, payload, max entries, lifetime in ms, message id.
APPEND_SCRIPT = (
    """
local done = redis.call('GET', KEYS[3])
if done then
    local at = string.find(done, ' ', 1, true)
    return {string.sub(done, 1, at - 1), tonumber(string.sub(done, at + 1))}
end
"""
    + ENSURE_EPOCH
    + """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], epoch .. ' ' .. seq, 'EX', 60)
return {epoch, seq}
"""
)

# What a (re)joining client gets, read in one step so that the last id and the messages
# agree. A new client (ARGV[3] empty) gets the last ARGV[5] messages; one from another
# epoch, all of this one; one that names an id beyond the room's last (Redis came back from
# an older snapshot, or failed over to a replica that lagged) makes the room start a new
# epoch, since those ids would otherwise be given to other messages. ARGV: candidate
# epoch, lifetime in ms, client epoch or "", client's last id, recent count.
REPLAY_SCRIPT = (
    ENSURE_EPOCH
    + """
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local after = tonumber(ARGV[4])
if ARGV[3] == epoch and after > last then
    epoch = ARGV[1]
    created = true
    last = 0
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
if created then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local from = after
if ARGV[3] == '' then
    from = math.max(last - tonumber(ARGV[5]), 0)
elseif ARGV[3] ~= epoch then
    from = 0
end
local entries = {}
if from < last then
    entries = redis.call('XRANGE', KEYS[2], '(' .. from .. '-0', '+')
end
return {epoch, last, entries}
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
        self._replay = redis.register_script(REPLAY_SCRIPT)

    def keys(self, group: str) -> list[str]:
        """The Redis keys of a room: its bookkeeping hash and its stream."""
        return [f"{self.prefix}:history:{group}:meta", f"{self.prefix}:history:{group}:stream"]

    async def append(self, group: str, message: dict[str, Any]) -> Stored:
        """Store ``message`` as the room's next one; raises a redis error when it cannot be stored."""
        payload = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        message_id = secrets.token_hex(12)
        keys = [*self.keys(group), f"{self.prefix}:history:{group}:appended:{message_id}"]
        epoch, seq = await self._append(
            keys=keys, args=[new_epoch(), payload, self.max_messages, self.lifetime_ms, message_id]
        )
        return Stored(_text(epoch), int(seq))

    async def replay(self, group: str, epoch: str | None, after: int | None, recent: int) -> Replay:
        """What a client should get on (re)joining.

        A new client (no ``epoch``) gets the ``recent`` last messages. A resuming client gets
        every message after ``after`` in its epoch, marked with a gap if some are gone.
        """
        resuming = epoch is not None and after is not None
        args: list[str | int] = [new_epoch(), self.lifetime_ms, epoch or "", after or 0, recent]
        if not resuming:
            args[2:4] = ["", 0]
        current, last_id, entries = await self._replay(keys=self.keys(group), args=args)
        current, last_id = _text(current), int(last_id)
        messages = [parse_entry(entry) for entry in entries]
        if not resuming:
            return Replay(current, last_id, messages)
        if epoch != current:
            # Everything of the client's epoch after its last id is unknowable now; all that
            # this epoch holds is sent, after a gap.
            return Replay(current, last_id, messages, gap=True)
        first = messages[0]["seq"] if messages else last_id + 1
        return Replay(current, last_id, messages, gap=first != cast(int, after) + 1)


def parse_entry(entry: list[Any]) -> dict[str, Any]:
    """A stream entry as a Lua script returns it ([id, [field, value]]) as a message with its ``seq``."""
    entry_id, fields = entry
    message: dict[str, Any] = json.loads(fields[1])
    message["seq"] = int(_text(entry_id).split("-")[0])
    return message


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
        # one, on a refused or cut connection only (a retried append that did run is not
        # stored twice, see APPEND_SCRIPT). A timeout is not retried: the sender is told.
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
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
