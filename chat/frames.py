"""The chat socket's frames: decoding and checking what clients send, building what they receive.

Pure functions only, so every rule here is tested without a socket (tests/unit/test_frames.py).
The consumer decides what to do with the result; the wire contract is in chat/consumers.py.
"""

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# JSON escaping can grow text up to six-fold (\uXXXX): a frame bigger than this for the
# message limit cannot hold a valid message, and is refused before it is parsed.
JSON_ESCAPE_GROWTH = 6
JSON_OVERHEAD = 1024
# The keys of a chat.message event that are passed on to the sockets of the room.
DELIVERED_KEYS = ("type", "message", "room", "id", "seq", "epoch", "sent_at", "from_replica", "replayed")
# What a resuming client may send as its epoch (chat/history.py makes them shorter).
EPOCH_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class ChatMessage:
    """A valid chat message from the client, ready to broadcast."""

    text: str


@dataclass(frozen=True)
class Ping:
    """An application-level heartbeat; browsers cannot see WebSocket pings."""


@dataclass(frozen=True)
class FrameError:
    """A frame that cannot be used: an error code for programs and a sentence for people."""

    code: str
    text: str


Frame = ChatMessage | Ping | FrameError


def json_type_name(value: object) -> str:
    """Name a decoded JSON value's type the way the sender wrote it."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return names.get(type(value), "text")


def decode(text_data: str | None, max_length: int) -> Frame:
    """Turn one client frame (None for a binary frame) into a chat message, a ping or an error."""
    if text_data is None:
        return FrameError(
            "binary_not_supported", 'Binary frames are not supported; send JSON text such as {"message": "hi"}.'
        )
    if len(text_data) > max_length * JSON_ESCAPE_GROWTH + JSON_OVERHEAD:
        return FrameError(
            "message_too_long", f"That frame is too large; messages are limited to {max_length} characters."
        )
    try:
        payload = json.loads(text_data)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested thousands deep
        return FrameError("invalid_json", 'Frames must be JSON, such as {"message": "hi"}.')
    if not isinstance(payload, dict):
        return FrameError("invalid_message", 'Frames must be a JSON object, such as {"message": "hi"}.')
    if payload.get("type") == "ping":
        return Ping()
    return check_message(payload, max_length)


def check_message(payload: dict[str, Any], max_length: int) -> ChatMessage | FrameError:
    """Return the chat message of a decoded frame, or the error that explains why it is not one."""
    if "message" not in payload:
        return FrameError("invalid_message", 'Frames must have a "message" key, such as {"message": "hi"}.')
    message = payload["message"]
    if not isinstance(message, str):
        return FrameError("invalid_message", f'"message" must be a string, not {json_type_name(message)}.')
    if not message.strip():
        return FrameError("invalid_message", "Empty messages are not sent; type something first.")
    if len(message) > max_length:
        return FrameError(
            "message_too_long", f"That message is {len(message)} characters long; the limit is {max_length}."
        )
    if any("\ud800" <= character <= "\udfff" for character in message):
        # A lone surrogate (JSON "\ud800") cannot be encoded as UTF-8: broadcast, it would
        # make Daphne drop the socket of every member of the room.
        return FrameError(
            "invalid_message", "The message contains invalid Unicode (a lone surrogate); it was not sent."
        )
    return ChatMessage(message)


def error_frame(code: str, text: str) -> str:
    """The frame that tells one client what was wrong with its input."""
    return json.dumps({"type": "error", "code": code, "error": text})


def pong_frame(replica: str | None) -> str:
    """The answer to a ping, naming the replica that serves the socket when it may be shown."""
    pong = {"type": "pong"}
    if replica is not None:
        pong["replica"] = replica
    return json.dumps(pong)


@dataclass(frozen=True)
class Resume:
    """Where a reconnecting client left off: its epoch and the id of the last message it has."""

    epoch: str
    after: int


def decode_resume(query_string: bytes) -> Resume | None | FrameError:
    """Read ``?epoch=E&after=N`` from a socket's URL: a Resume, None for a fresh join, or an error."""
    try:
        query = parse_qs(query_string.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        query = {"epoch": ["\ufffd"]}
    epoch, after = query.get("epoch", [None])[-1], query.get("after", [None])[-1]
    if epoch is None and after is None:
        return None
    # isdigit() alone takes "²" and other digits that int() refuses.
    if (
        epoch is None
        or after is None
        or not (after.isascii() and after.isdigit() and len(after) <= 18)
        or not EPOCH_PATTERN.fullmatch(epoch)
    ):
        return FrameError(
            "invalid_resume",
            "To resume, connect with ?epoch=<epoch>&after=<last id> as the server sent them; "
            "showing the recent messages instead.",
        )
    return Resume(epoch, int(after))


def chat_event(text: str, room: str, replica: str | None) -> dict[str, Any]:
    """The channel-layer event that carries one message to every member of the room.

    The history gives it its ``seq`` and ``epoch`` (see ``numbered``) before it is sent.
    """
    event: dict[str, Any] = {"type": "chat.message", "message": text, "room": room, "sent_at": time.time()}
    if replica is not None:
        event["from_replica"] = replica
    return event


def numbered(event: dict[str, Any], epoch: str, seq: int, replayed: bool = False) -> dict[str, Any]:
    """``event`` with its place in the room: ``seq`` (1, 2, ... within ``epoch``) and a unique ``id``."""
    placed = {**event, "type": "chat.message", "epoch": epoch, "seq": seq, "id": f"{epoch}-{seq}"}
    if replayed:
        placed["replayed"] = True
    return placed


def welcome_frame(epoch: str, last_id: int, gap: bool, replaying: int) -> str:
    """The first frame of a joined socket: the room's epoch and last id, and what follows.

    ``replaying`` chat.message frames from the history come next, then live ones. ``gap``
    says that messages the client asked for are gone: the page marks the spot.
    """
    return json.dumps({"type": "welcome", "epoch": epoch, "last_id": last_id, "gap": gap, "replaying": replaying})


def gap_frame(epoch: str, after: int) -> str:
    """Messages of ``epoch`` after id ``after`` (0: from its start) may be missing here."""
    return json.dumps({"type": "gap", "epoch": epoch, "after": after})


def delivery_frame(event: dict[str, Any], replica: str | None) -> str:
    """The frame a member receives for a chat.message event, naming its own replica when shown."""
    frame = {key: event[key] for key in DELIVERED_KEYS if key in event}
    if replica is not None:
        frame["to_replica"] = replica
    return json.dumps(frame, ensure_ascii=False)
