"""The chat WebSocket consumer: one socket in one room, broadcast through the channel layer.

Wire contract (compatible with the Channels tutorial): clients send ``{"message": text}``;
every member of the room, on any replica, receives ``{"type": "chat.message",
"message": text, ...}``. Bad input is answered with ``{"type": "error", "code": ...,
"error": human text}`` and the socket stays open.
"""

import json
import logging
import time
import uuid

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat.rooms import InvalidRoomName, group_name_for, normalize_room_name

logger = logging.getLogger(__name__)

# Close codes in the 4000-4999 range are ours to define (RFC 6455, section 7.4.2).
CLOSE_INVALID_ROOM = 4400
CLOSE_UNKNOWN_PATH = 4404
CLOSE_LAYER_UNAVAILABLE = 4503
CLOSE_POLICY_VIOLATION = 1008
# Frames over the rate limit, back to back, before the socket is closed as a flood.
MAX_REFUSED_IN_A_ROW = 500


def json_type_name(value):
    """Name a decoded JSON value's type the way the sender wrote it."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}.get(
        type(value), "text"
    )


class TokenBucket:
    """Allow ``rate`` events per second on average, with bursts of up to ``burst``."""

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self):
        """Spend one token and return True, or return False when the bucket is empty."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class ChatConsumer(AsyncWebsocketConsumer):
    """Joins the room's group on connect, broadcasts what clients send, leaves on disconnect."""

    group_name = None

    async def connect(self):
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
        self.ping_limit = TokenBucket(1, 5)
        self.refused_in_a_row = 0
        self.last_limit_notice = float("-inf")
        await self.accept()

    async def disconnect(self, code):
        """Leave the room's group; a failure here only delays cleanup until the group expires."""
        if self.group_name is None:
            return
        try:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        except Exception:
            logger.warning("could not leave group %s; it expires by itself", self.group_name, exc_info=True)

    async def receive(self, text_data=None, bytes_data=None):
        """Check one client frame and broadcast its message to the room."""
        if self.group_name is None:
            return
        payload, problem = self.decode_frame(text_data)
        # Every frame counts against a limit, malformed ones included, so that no kind of
        # frame lets one client keep a replica busy. Heartbeats have a bucket of their own so
        # that a burst of chat never starves them (the page would think the socket is dead).
        is_ping = payload is not None and payload.get("type") == "ping"
        if not (self.ping_limit if is_ping else self.rate_limit).take():
            await self.refuse_over_limit()
            return
        self.refused_in_a_row = 0
        if problem is not None:
            await self.send_error(*problem)
            return
        if is_ping:
            # Application-level heartbeat: browsers cannot see WebSocket pings, so the page
            # sends these to notice a dead connection, and learns which replica it reached.
            pong = {"type": "pong"}
            if settings.CHATSCALE_REPLICA_HEADER:
                pong["replica"] = settings.CHATSCALE_REPLICA_NAME
            await self.send(text_data=json.dumps(pong))
            return
        message = await self.check_message(payload)
        if message is None:
            return
        event = {
            "type": "chat.message",
            "message": message,
            "room": self.room_name,
            "id": uuid.uuid4().hex,
            "sent_at": time.time(),
        }
        if settings.CHATSCALE_REPLICA_HEADER:
            event["from_replica"] = settings.CHATSCALE_REPLICA_NAME
        try:
            await self.channel_layer.group_send(self.group_name, event)
        except Exception:
            logger.exception("group_send to %s failed", self.group_name)
            await self.send_error(
                "unavailable", "The chat service is temporarily unavailable; your message was not sent."
            )

    async def refuse_over_limit(self):
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

    def decode_frame(self, text_data):
        """Return (payload dict, None), or (None, (error code, text)) for a frame we cannot use."""
        if text_data is None:
            return None, (
                "binary_not_supported",
                'Binary frames are not supported; send JSON text such as {"message": "hi"}.',
            )
        limit = settings.CHAT_MESSAGE_MAX_LENGTH
        # JSON escaping can grow text up to six-fold (\uXXXX); anything bigger is not worth parsing.
        if len(text_data) > limit * 6 + 1024:
            return None, ("message_too_long", f"That frame is too large; messages are limited to {limit} characters.")
        try:
            payload = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested thousands deep
            return None, ("invalid_json", 'Frames must be JSON, such as {"message": "hi"}.')
        if not isinstance(payload, dict):
            return None, ("invalid_message", 'Frames must be a JSON object, such as {"message": "hi"}.')
        return payload, None

    async def check_message(self, payload):
        """Return the text of a chat frame, or send an error frame and return None."""
        limit = settings.CHAT_MESSAGE_MAX_LENGTH
        if "message" not in payload:
            await self.send_error("invalid_message", 'Frames must have a "message" key, such as {"message": "hi"}.')
            return None
        message = payload["message"]
        if not isinstance(message, str):
            await self.send_error("invalid_message", f'"message" must be a string, not {json_type_name(message)}.')
            return None
        if not message.strip():
            await self.send_error("invalid_message", "Empty messages are not sent; type something first.")
            return None
        if len(message) > limit:
            await self.send_error(
                "message_too_long", f"That message is {len(message)} characters long; the limit is {limit}."
            )
            return None
        if any("\ud800" <= character <= "\udfff" for character in message):
            # A lone surrogate (JSON "\ud800") cannot be encoded as UTF-8: broadcast, it
            # would make Daphne drop the socket of every member of the room.
            await self.send_error(
                "invalid_message", "The message contains invalid Unicode (a lone surrogate); it was not sent."
            )
            return None
        return message

    async def chat_message(self, event):
        """Deliver a room message from the channel layer to this socket."""
        frame = {
            key: event[key] for key in ("type", "message", "room", "id", "sent_at", "from_replica") if key in event
        }
        if settings.CHATSCALE_REPLICA_HEADER:
            frame["to_replica"] = settings.CHATSCALE_REPLICA_NAME
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def send_error(self, code, text):
        """Tell this client, and only this client, what was wrong with its input."""
        await self.send(text_data=json.dumps({"type": "error", "code": code, "error": text}))


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Answers sockets opened on any path other than /ws/chat/<room>/ with a reason, then closes."""

    async def connect(self):
        """Accept only to explain: a refused handshake would carry no reason."""
        await self.accept()
        await self.send(
            text_data=json.dumps(
                {"type": "error", "code": "unknown_path", "error": "Chat sockets live at /ws/chat/<room name>/."}
            )
        )
        await self.close(code=CLOSE_UNKNOWN_PATH)
