"""Each replica watches its Redis and, when Redis lost its state, asks its sockets to resume.

The pub/sub channel layer re-subscribes by itself after Redis comes back, but whatever a
room said between the loss and the re-subscription never reached this replica's sockets.
So on any sign of loss (Redis unreachable, a connection cut, the replica's marker key gone
after a flush or a restart without persistence) the watch closes every socket of the
replica with CLOSE_RESUME. The pages reconnect, name the last message they have, and get
the rest from the room's history, or are told plainly what is missing. Drop the
connection, never the message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from typing import Protocol

from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

logger = logging.getLogger(__name__)

# The marker outlives many checks; it is refreshed long before it could expire.
MARKER_LIFETIME_SECONDS = 600
# Closing thousands of sockets at once would bring them all back in the same instant.
SPREAD_CLOSES_OVER_SECONDS = 1.0

# After Redis is back, the pub/sub layer re-subscribes within about a second (it polls, and
# waits a second after an error): sockets that joined meanwhile catch up from history on
# this many checks.
CATCH_UP_CHECKS = 3


class Watched(Protocol):
    """A socket the watch looks after."""

    async def resume_elsewhere(self) -> None:
        """Close the socket so that its client reconnects and resumes from history."""

    async def catch_up(self) -> None:
        """Send what the room's history holds beyond the last message this socket got."""


class RedisWatch:
    """Checks Redis every ``interval`` seconds; when it lost its state, every socket resumes."""

    def __init__(self, redis: Redis, marker_key: str, interval: float) -> None:
        self.redis = redis
        self.marker_key = marker_key
        self.interval = interval
        self.sockets: weakref.WeakSet[Watched] = weakref.WeakSet()
        self.marker_set = False
        self.catch_up_checks_left = 0
        self.reachable = True
        self.task: asyncio.Task[None] | None = None

    def register(self, socket: Watched) -> None:
        """Look after ``socket`` until it leaves (or is closed for resume)."""
        self.sockets.add(socket)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run(), name="chatscale-redis-watch")

    def unregister(self, socket: Watched) -> None:
        """Forget a socket that has gone."""
        self.sockets.discard(socket)

    async def run(self) -> None:
        """Check forever; a failing check is logged, never fatal."""
        while True:
            try:
                reason = await self.check()
                if reason is not None:
                    await self.resume_everyone(reason)
                elif self.catch_up_checks_left:
                    self.catch_up_checks_left -= 1
                    await self.catch_up_everyone()
            except Exception:
                logger.exception("the Redis watch failed a check; it carries on")
            await asyncio.sleep(self.interval)

    async def check(self) -> str | None:
        """One look at Redis: None when all is well, else why the sockets must resume."""
        try:
            marker = await self.redis.get(self.marker_key)
            if marker is None:
                await self.redis.set(self.marker_key, b"1", ex=MARKER_LIFETIME_SECONDS)
                lost_data, self.marker_set = self.marker_set, True
                if lost_data:
                    return "Redis lost its data (flushed, or restarted without persistence)"
            else:
                await self.redis.expire(self.marker_key, MARKER_LIFETIME_SECONDS)
        except ResponseError as error:
            # Redis answered (full, say: "OOM command not allowed"): it has not lost its state,
            # and closing every socket would only make it busier.
            logger.warning("Redis refused the watch's marker: %s", error)
            return None
        except (RedisError, OSError) as error:
            was_reachable, self.reachable = self.reachable, False
            # Every socket is closed now; one that connects after Redis is back finds it as it
            # is then, so a marker missing at that point is no news.
            self.marker_set = False
            if was_reachable:
                return f"Redis is unreachable ({error})"
            return None
        if not self.reachable:
            self.reachable = True
            logger.warning("Redis is reachable again")
            self.catch_up_checks_left = CATCH_UP_CHECKS
        return None

    async def resume_everyone(self, reason: str) -> None:
        """Close every socket, spread over a moment, so that each resumes from history."""
        sockets = list(self.sockets)
        self.sockets.clear()
        logger.warning("%s: closing %d socket(s) so that they resume from history", reason, len(sockets))
        self.catch_up_checks_left = CATCH_UP_CHECKS
        for socket in sockets:
            try:
                await socket.resume_elsewhere()
            except Exception:  # one socket that cannot be closed must not keep the others open
                logger.warning("could not close a socket for resume", exc_info=True)
            await asyncio.sleep(SPREAD_CLOSES_OVER_SECONDS / len(sockets))

    async def catch_up_everyone(self) -> None:
        """Let every socket fetch from history what the re-subscribing layer may have missed."""
        for socket in list(self.sockets):
            try:
                await socket.catch_up()
            except Exception:
                logger.warning("a socket could not catch up; it resumes instead", exc_info=True)
                try:
                    await socket.resume_elsewhere()
                except Exception:  # already gone; the others still get their turn
                    logger.warning("could not close a socket for resume", exc_info=True)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisWatch] = weakref.WeakKeyDictionary()


def redis_watch() -> RedisWatch | None:
    """The watch of the running event loop, or None when the settings turn it off."""
    if not settings.CHAT_REDIS_WATCH_INTERVAL:
        return None
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        # No retries: a cut connection must show up as an error here, not be papered over,
        # because the pub/sub connection was probably cut at the same moment.
        redis = Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )
        marker = f"{settings.CHANNEL_LAYER_PREFIX}:replica-marker:{secrets.token_hex(8)}"
        watch = RedisWatch(redis, marker, settings.CHAT_REDIS_WATCH_INTERVAL)
        _watches[loop] = watch
    return watch
