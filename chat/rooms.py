"""Room names as people type them, and the channel-layer group names derived from them.

A room name is any Unicode text up to ``CHAT_ROOM_NAME_MAX_LENGTH`` characters. The
channel layer accepts only ASCII letters, digits, hyphens, underscores and periods in
group names (fewer than 100 of them), so the group name is a readable ASCII slug plus a
hash of the full name: distinct rooms never share a group, whatever they are called.
"""

import hashlib
import re
import unicodedata

from django.conf import settings


class InvalidRoomName(ValueError):
    """A room name that cannot be used; the message says why, in words for the user."""


def normalize_room_name(raw: object) -> str:
    """Return the canonical form of a typed room name, or raise InvalidRoomName.

    Canonical means NFC-normalized with surrounding whitespace removed, so that the
    same visible name always reaches the same room.
    """
    if not isinstance(raw, str):
        raise InvalidRoomName("The room name must be text.")
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise InvalidRoomName("Type a room name: it cannot be empty or only spaces.")
    limit = settings.CHAT_ROOM_NAME_MAX_LENGTH
    if len(name) > limit:
        raise InvalidRoomName(
            f"That room name is {len(name)} characters long; the limit is {limit}. Choose a shorter name."
        )
    if name in (".", ".."):
        # Browsers resolve /chat/../ to a different page, so these names can never be visited.
        raise InvalidRoomName("'.' and '..' cannot be room names; add another character.")
    for character in name:
        # Cc/Cs/Co: control, surrogate and private-use code points. Unassigned ones (Cn) are
        # allowed: they are tomorrow's emoji, which a newer browser already sends while this
        # Python's Unicode tables do not know them yet. Format characters (Cf, such as the
        # zero-width joiner inside emoji) are allowed too.
        if unicodedata.category(character) in ("Cc", "Cs", "Co"):
            raise InvalidRoomName(
                f"The room name contains an invisible or control character (U+{ord(character):04X}); "
                "remove it and try again."
            )
    if all(unicodedata.category(character) in ("Cf", "Zs", "Zl", "Zp") for character in name):
        raise InvalidRoomName("The room name is made only of invisible characters; type something visible.")
    return name


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def group_name_for(room_name: str) -> str:
    """Return the channel-layer group name of an already normalized room name."""
    ascii_text = unicodedata.normalize("NFKD", room_name).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")[:40] or "room"
    digest = hashlib.sha256(room_name.encode("utf-8")).hexdigest()[:32]
    return f"chat.{slug}.{digest}"
