"""In-memory stand-ins for the unit tests, which need nothing running (the real ones are tested against Redis)."""

import asyncio
from collections import deque
from typing import Any

from django.conf import settings

from chat.history import Replay, Stored, new_epoch


class InMemoryHistory:
    """chat.history.RoomHistory's behaviour, kept in a dict; ``fail`` makes every call raise."""

    def __init__(self) -> None:
        self.rooms: dict[str, tuple[str, int, deque[dict[str, Any]]]] = {}
        self.fail = False

    def _room(self, group: str) -> tuple[str, int, deque[dict[str, Any]]]:
        if self.fail:
            raise ConnectionError("the history is unavailable (test)")
        if group not in self.rooms:
            self.rooms[group] = (new_epoch(), 0, deque(maxlen=settings.CHAT_HISTORY_MAX_MESSAGES))
        return self.rooms[group]

    def forget(self) -> None:
        """What a Redis flush does: every room starts a new epoch."""
        self.rooms.clear()

    async def append(self, group: str, message: dict[str, Any]) -> Stored:
        await asyncio.sleep(0)  # a real store suspends here, letting other tasks run
        epoch, seq, messages = self._room(group)
        seq += 1
        messages.append({**message, "seq": seq})
        self.rooms[group] = (epoch, seq, messages)
        return Stored(epoch, seq)

    async def replay(self, group: str, epoch: str | None, after: int | None, recent: int) -> Replay:
        await asyncio.sleep(0)
        current, last_id, messages = self._room(group)
        if epoch is None or after is None:
            return Replay(current, last_id, [dict(m) for m in messages if m["seq"] > last_id - recent])
        if epoch != current:
            return Replay(current, last_id, [dict(m) for m in messages], gap=True)
        newer = [dict(m) for m in messages if m["seq"] > after]
        first = newer[0]["seq"] if newer else last_id + 1
        return Replay(current, last_id, newer, gap=after < last_id and first != after + 1)
