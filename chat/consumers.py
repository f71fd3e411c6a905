"""The chat WebSocket consumer: one socket in one room, broadcast through the channel layer.

Wire contract (compatible with the Channels tutorial): clients send ``{"message": text}``;
every member of the room, on any replica, receives ``{"type": "chat.message",
"message": text, ...}``. Bad input is answered with ``{"type": "error", "code": ...,
"error": human text}`` and the socket stays open. The frames themselves are chat/frames.py's.
"""

import logging
import time
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import frames, replica
from chat.frames import ChatMessage, FrameError, Ping
from chat.ratelimit import TokenBucket
from chat.rooms import InvalidRoomName, group_name_for, normalize_room_name

logger = logging.getLogger(__name__)

# Close codes in the 4000-4999 range are ours to define (RFC 6455, section 7.4.2).
CLOSE_INVALID_ROOM = 4400
CLOSE_UNKNOWN_PATH = 4404
CLOSE_LAYER_UNAVAILABLE = 4503
CLOSE_POLICY_VIOLATION = 1008
# Frames over the rate limit, back to back, before the socket is closed as a flood.
MAX_REFUSED_IN_A_ROW = 500
# Heartbeats have a bucket of their own so that a burst of chat never starves them (the
# page would think the socket is dead): one a second, bursts of five.
PING_RATE_PER_SECOND = 1
PING_BURST = 5


class ChatConsumer(AsyncWebsocketConsumer):
    """Joins the room's group on connect, broadcasts what clients send, leaves on disconnect."""

    group_name: str | None = None

    async def connect(self) -> None:
        """Validate the room name, join its group, then accept the socket."""
        try:
            self.room_name = normalize_room_name(self.scope["url_route"]["kwargs"]["room_name"])
        except InvalidRoomName as error:
            # Accept first so the browser can read why; a refused handshake carries no reason.
            await self.accept()
            await self.send_error("invalid_room", str(error))
            await self.close(code=CLOSE_INVALID_ROOM)
            return
        group_name = group_name_for(self.room_name)
        try:
            await self.channel_layer.group_add(group_name, self.channel_name)
        except Exception:
            logger.exception("could not join room %r: channel layer unavailable", self.room_name)
            await self.accept()
            await self.send_error("unavailable", "The chat service is temporarily unavailable; reconnecting.")
            await self.close(code=CLOSE_LAYER_UNAVAILABLE)
            return
        self.group_name = group_name
        self.rate_limit = TokenBucket(settings.CHAT_RATE_LIMIT_PER_SECOND, settings.CHAT_RATE_LIMIT_BURST)
        self.ping_limit = TokenBucket(PING_RATE_PER_SECOND, PING_BURST)
        self.refused_in_a_row = 0
        self.last_limit_notice = float("-inf")
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave the room's group; a failure here only delays cleanup until the group expires."""
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
            case FrameError(code, text):
                await self.send_error(code, text)
            case ChatMessage(text):
                await self.broadcast(self.group_name, text)

    async def broadcast(self, group_name: str, text: str) -> None:
        """Send a checked message to every member of the room, or tell the sender it was not sent."""
        event = frames.chat_event(text, self.room_name, replica.shown_name())
        try:
            await self.channel_layer.group_send(group_name, event)
        except Exception:
            logger.exception("group_send to %s failed", group_name)
            await self.send_error(
                "unavailable", "The chat service is temporarily unavailable; your message was not sent."
            )

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
        """Deliver a room message from the channel layer to this socket."""
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
