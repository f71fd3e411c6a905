"""The chat WebSocket consumer: one socket in one room, broadcast through the channel layer.

Wire contract (compatible with the Channels tutorial): clients send ``{"message": text}``;
every member of the room, on any replica, receives ``{"type": "chat.message",
"message": text, ...}``. Bad input is answered with ``{"type": "error", "code": ...,
"error": human text}`` and the socket stays open. The frames themselves are chat/frames.py's.

Every message is stored in the room's history (chat/history.py) before it is broadcast, and
numbered there. A socket gets the room's messages strictly in order: on joining, the recent
history (or, resuming, everything after the id it names), then live messages; a hole in the
live stream is filled from the history, and what the history no longer holds is announced
with a gap frame. When this replica loses Redis, chat/redis_watch.py closes the socket with
CLOSE_RESUME and the client resumes, here or on another replica.
"""

import asyncio
import logging
import time
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import frames, replica
from chat.frames import ChatMessage, FrameError, Ping, Resume
from chat.history import Replay, history_store
from chat.ratelimit import TokenBucket
from chat.redis_watch import redis_watch
from chat.rooms import InvalidRoomName, group_name_for, normalize_room_name

logger = logging.getLogger(__name__)

# Close codes in the 4000-4999 range are ours to define (RFC 6455, section 7.4.2).
CLOSE_INVALID_ROOM = 4400
CLOSE_UNKNOWN_PATH = 4404
CLOSE_LAYER_UNAVAILABLE = 4503
# "Reconnect and resume": this replica lost Redis or is going away. 1012 (Service Restart)
# would say the same, but Daphne's WebSocket library only sends 1000 and 3000-4999.
CLOSE_RESUME = 4012
# A flood. 1008 (Policy Violation) would say it, but Daphne's WebSocket library refuses to
# send any code but 1000 and 3000-4999: the 1008 close raised inside Daphne instead.
CLOSE_POLICY_VIOLATION = 4008
# Frames over the rate limit, back to back, before the socket is closed as a flood.
MAX_REFUSED_IN_A_ROW = 500
# Heartbeats have a bucket of their own so that a burst of chat never starves them (the
# page would think the socket is dead): one a second, bursts of five.
PING_RATE_PER_SECOND = 1
PING_BURST = 5


class ChatConsumer(AsyncWebsocketConsumer):
    """Joins the room's group on connect, broadcasts what clients send, leaves on disconnect."""

    group_name: str | None = None
    # Where this socket is in the room's numbered history: its epoch, and the id of the last
    # message it was sent (every message up to it was sent, in order).
    epoch: str | None = None
    last_seq: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held while messages go out, so that live delivery and the Redis watch's catch-up
        # (another task) never send the same message twice or out of order.
        self.delivering = asyncio.Lock()

    async def connect(self) -> None:
        """Validate the room name, join its group, accept, then send the history the client lacks."""
        try:
            self.room_name = normalize_room_name(self.scope["url_route"]["kwargs"]["room_name"])
        except InvalidRoomName as error:
            # Accept first so the browser can read why; a refused handshake carries no reason.
            await self.accept()
            await self.send_error("invalid_room", str(error))
            await self.close(code=CLOSE_INVALID_ROOM)
            return
        group_name = group_name_for(self.room_name)
        resume = frames.decode_resume(self.scope.get("query_string", b""))
        try:
            # Join first, read the history second: a message sent in between arrives both
            # ways, and the copy already sent is dropped (chat_message), never lost.
            await self.channel_layer.group_add(group_name, self.channel_name)
            self.group_name = group_name
            replay = await history_store().replay(
                group_name,
                resume.epoch if isinstance(resume, Resume) else None,
                resume.after if isinstance(resume, Resume) else None,
                settings.CHAT_HISTORY_ON_JOIN,
            )
        except Exception:
            logger.exception("could not join room %r: Redis unavailable", self.room_name)
            await self.accept()
            await self.send_error("unavailable", "The chat service is temporarily unavailable; reconnecting.")
            await self.close(code=CLOSE_LAYER_UNAVAILABLE)
            return
        self.rate_limit = TokenBucket(settings.CHAT_RATE_LIMIT_PER_SECOND, settings.CHAT_RATE_LIMIT_BURST)
        self.ping_limit = TokenBucket(PING_RATE_PER_SECOND, PING_BURST)
        self.refused_in_a_row = 0
        self.last_limit_notice = float("-inf")
        await self.accept()
        if isinstance(resume, FrameError):
            await self.send_error(resume.code, resume.text)
        await self.send_replay(replay)
        watch = redis_watch()
        if watch is not None:
            watch.register(self)

    async def send_replay(self, replay: Replay) -> None:
        """Send the welcome frame and the history it announces; the socket is then at ``replay.last_id``."""
        self.epoch = replay.epoch
        await self.send(text_data=frames.welcome_frame(replay.epoch, replay.last_id, replay.gap, len(replay.messages)))
        for message in replay.messages:
            await self.send_delivery(frames.numbered(message, replay.epoch, message["seq"], replayed=True))
        self.last_seq = replay.last_id

    async def disconnect(self, code: int) -> None:
        """Leave the room's group (a failure here only leaves a subscription this replica drops later)."""
        watch = redis_watch()
        if watch is not None:
            watch.unregister(self)
        if self.group_name is None:
            return
        try:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        except Exception:
            logger.warning("could not leave group %s; it expires by itself", self.group_name, exc_info=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer one client frame: broadcast its message, answer its ping, or explain what is wrong."""
        if self.group_name is None:
            return
        frame = frames.decode(text_data, settings.CHAT_MESSAGE_MAX_LENGTH)
        # Every frame counts against a limit, malformed ones included, so that no kind of
        # frame lets one client keep a replica busy.
        if not (self.ping_limit if isinstance(frame, Ping) else self.rate_limit).take():
            await self.refuse_over_limit()
            return
        self.refused_in_a_row = 0
        match frame:
            case Ping():
                # Browsers cannot see WebSocket pings, so the page sends these to notice a dead
                # connection, and learns which replica it reached.
                await self.send(text_data=frames.pong_frame(replica.shown_name()))
                # A heartbeat is also when a quiet socket makes sure it missed nothing: a
                # message stored but never broadcast, or a broadcast this replica did not hear,
                # arrives here at the latest (the page pings every 25 s).
                try:
                    await self.catch_up()
                except Exception:
                    logger.warning("could not check the history at a heartbeat", exc_info=True)
            case FrameError(code, text):
                await self.send_error(code, text)
            case ChatMessage(text):
                await self.broadcast(self.group_name, text)

    async def broadcast(self, group_name: str, text: str) -> None:
        """Store a checked message in the room's history, then send it to every member.

        A message that could not be stored is refused: the sender is told and may send it
        again. One stored but not broadcast still reaches every member: the replica's Redis
        watch makes the sockets resume, and they fetch it from the history.
        """
        event = frames.chat_event(text, self.room_name, replica.shown_name())
        try:
            stored = await history_store().append(group_name, event)
        except Exception:
            logger.exception("could not store a message of %s", group_name)
            await self.send_error(
                "unavailable", "The chat service is temporarily unavailable; your message was not sent."
            )
            return
        try:
            await self.channel_layer.group_send(group_name, frames.numbered(event, stored.epoch, stored.id))
        except Exception:
            logger.exception("group_send to %s failed; members get message %s from history", group_name, stored.id)

    async def refuse_over_limit(self) -> None:
        """Drop a frame over the rate limit: say so at most once a second, close a relentless flood."""
        self.refused_in_a_row += 1
        if self.refused_in_a_row > MAX_REFUSED_IN_A_ROW:
            await self.send_error("rate_limited", "Far too many messages; closing this connection. Slow down.")
            await self.close(code=CLOSE_POLICY_VIOLATION)
            return
        now = time.monotonic()
        if now - self.last_limit_notice >= 1:
            self.last_limit_notice = now
            await self.send_error(
                "rate_limited",
                f"Too many messages: at most {settings.CHAT_RATE_LIMIT_PER_SECOND} per second. "
                "Messages over the limit are not sent.",
            )

    async def chat_message(self, event: dict[str, Any]) -> None:
        """Deliver a room message from the channel layer, in order, each exactly once."""
        async with self.delivering:
            await self.deliver(event)

    async def deliver(self, event: dict[str, Any]) -> None:
        """chat_message's work, under the delivery lock."""
        epoch, seq = event.get("epoch"), event.get("seq")
        if not isinstance(seq, int) or self.group_name is None:
            return
        if epoch != self.epoch or seq > self.last_seq + 1:
            # A hole: broadcasts from different replicas can overtake each other on their way
            # here. Or another epoch: Redis lost the room and a new one began, or this is a
            # late broadcast of the old one. The history knows which: it sends what we lack
            # of the room's current epoch, after a gap frame if the epoch changed.
            await self.fill_from_history()
        if epoch != self.epoch or seq <= self.last_seq:
            return  # already sent (on join, or while filling a hole), or of a bygone epoch
        await self.send_delivery(event)
        self.last_seq = seq

    async def catch_up(self) -> None:
        """Send every message the room's history holds after the last one this socket got.

        Called by the Redis watch, from its own task, after Redis came back.
        """
        async with self.delivering:
            await self.fill_from_history()

    async def fill_from_history(self) -> None:
        """catch_up's work, under the delivery lock."""
        if self.group_name is None or self.epoch is None:
            return
        replay = await history_store().replay(self.group_name, self.epoch, self.last_seq, 0)
        if replay.epoch != self.epoch:
            await self.send(text_data=frames.gap_frame(replay.epoch, 0))
            self.epoch, self.last_seq = replay.epoch, 0
        elif replay.gap:
            # The history was trimmed past our last message (more than it keeps were sent).
            await self.send(text_data=frames.gap_frame(self.epoch, self.last_seq))
        for message in replay.messages:
            if message["seq"] > self.last_seq:
                # Part of the live stream, only fetched from the history: not marked replayed.
                await self.send_delivery(frames.numbered(message, replay.epoch, message["seq"]))
                self.last_seq = message["seq"]

    async def resume_elsewhere(self) -> None:
        """Close this socket so that its client reconnects and resumes from the history."""
        await self.close(code=CLOSE_RESUME)

    async def send_delivery(self, event: dict[str, Any]) -> None:
        """Send one numbered chat message to this socket."""
        await self.send(text_data=frames.delivery_frame(event, replica.shown_name()))

    async def send_error(self, code: str, text: str) -> None:
        """Tell this client, and only this client, what was wrong with its input."""
        await self.send(text_data=frames.error_frame(code, text))


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Answers sockets opened on any path other than /ws/chat/<room>/ with a reason, then closes."""

    async def connect(self) -> None:
        """Accept only to explain: a refused handshake would carry no reason."""
        await self.accept()
        await self.send(text_data=frames.error_frame("unknown_path", "Chat sockets live at /ws/chat/<room name>/."))
        await self.close(code=CLOSE_UNKNOWN_PATH)
