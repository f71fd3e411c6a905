"""The chat consumer, driven through the full ASGI application as Daphne runs it."""

import asyncio
import contextlib
import gc
import json
import logging
import time
from urllib.parse import quote

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.testing import WebsocketCommunicator

from chat import consumers
from chat.consumers import CLOSE_INVALID_ROOM, CLOSE_LAYER_UNAVAILABLE
from chat.frames import numbered
from chat.history import history_store
from chat.rooms import group_name_for
from mysite.asgi import application

REPLICA = "unit-test-replica"
# A browser on http://testserver/ sends both: the page's origin and the host it connects to.
ALLOWED_ORIGIN = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


class LayerDown(ConnectionError):
    """What a channel layer raises when Redis cannot be reached."""


class GroupSendFails(InMemoryChannelLayer):
    async def group_send(self, group, message):
        raise LayerDown("redis is down")


class GroupAddFails(InMemoryChannelLayer):
    async def group_add(self, group, channel):
        raise LayerDown("redis is down")


class GroupDiscardFails(InMemoryChannelLayer):
    async def group_discard(self, group, channel):
        raise LayerDown("redis is down")


@pytest.fixture(autouse=True)
def channel_layer():
    """A fresh in-memory layer per test: its queues belong to the test's event loop."""
    layer = InMemoryChannelLayer()
    channel_layers.set(DEFAULT_CHANNEL_LAYER, layer)
    yield layer
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


def use_layer(layer):
    channel_layers.set(DEFAULT_CHANNEL_LAYER, layer)
    return layer


def socket_path(room):
    """The path a browser requests: the room name encoded as encodeURIComponent does it.

    WebsocketCommunicator then decodes it, as Daphne does, so the scope sees the decoded text.
    """
    return "/ws/chat/" + quote(room, safe="!'()*") + "/"


def communicator_for(room, headers=ALLOWED_ORIGIN, query=""):
    return WebsocketCommunicator(application, socket_path(room) + query, headers=list(headers))


async def joined(communicator):
    """Read the welcome frame and the history it announces; keep them on the communicator."""
    communicator.welcome = await communicator.receive_json_from()
    assert communicator.welcome["type"] == "welcome", communicator.welcome
    communicator.replayed = [await communicator.receive_json_from() for _ in range(communicator.welcome["replaying"])]
    return communicator


@contextlib.asynccontextmanager
async def member_of(room, query=""):
    """An open socket in ``room`` that has read its welcome and history, closed again at the end."""
    communicator = communicator_for(room, query=query)
    connected, _ = await communicator.connect()
    assert connected, f"could not join {room!r}"
    try:
        yield await joined(communicator)
    finally:
        await communicator.disconnect()


async def say(communicator, text):
    await communicator.send_json_to({"message": text})


async def assert_error(communicator, code):
    """Receive the next frame, check it is an error with ``code``, and return its text."""
    frame = await communicator.receive_json_from()
    assert frame["type"] == "error", frame
    assert frame["code"] == code, frame
    assert frame["error"].strip(), frame
    return frame["error"]


def error_text(text, code):
    """Check that a raw frame is an error with ``code`` and return its explanation."""
    frame = json.loads(text)
    assert (frame["type"], frame["code"]) == ("error", code), frame
    return frame["error"]


async def assert_still_works(communicator):
    """The socket still delivers a valid message after whatever happened before."""
    await say(communicator, "still here")
    frame = await communicator.receive_json_from()
    assert frame["type"] == "chat.message", frame
    assert frame["message"] == "still here"


async def test_every_member_of_a_room_receives_a_message():
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        before = time.time()
        await say(alice, "hello, room")
        to_alice = await alice.receive_json_from()
        to_bob = await bob.receive_json_from()

    assert to_alice == to_bob
    assert to_bob["type"] == "chat.message"
    assert to_bob["message"] == "hello, room"
    assert to_bob["room"] == "lobby"
    assert (to_bob["epoch"], to_bob["seq"]) == (bob.welcome["epoch"], 1)
    assert to_bob["id"] == f"{bob.welcome['epoch']}-1"
    assert before - 1 <= to_bob["sent_at"] <= time.time() + 1
    assert to_bob["from_replica"] == REPLICA
    assert to_bob["to_replica"] == REPLICA


async def test_each_message_gets_its_own_id():
    async with member_of("lobby") as alice:
        await say(alice, "one")
        await say(alice, "two")
        first = await alice.receive_json_from()
        second = await alice.receive_json_from()
    assert [first["message"], second["message"]] == ["one", "two"]
    assert first["id"] != second["id"]


async def test_text_comes_back_exactly_as_sent():
    text = 'héllo 👋 <b>bold</b> & "quotes" \\ back\nslash'
    async with member_of("lobby") as alice:
        await say(alice, text)
        frame = await alice.receive_json_from()
    assert frame["message"] == text


async def test_other_rooms_hear_nothing():
    async with member_of("lobby") as alice, member_of("elsewhere") as carol:
        await say(alice, "only for the lobby")
        assert (await alice.receive_json_from())["message"] == "only for the lobby"
        assert await carol.receive_nothing()


async def test_rooms_whose_ascii_slugs_collide_stay_separate():
    async with member_of("Café") as alice, member_of("Cafe") as carol:
        await say(alice, "bonjour")
        assert (await alice.receive_json_from())["room"] == "Café"
        assert await carol.receive_nothing()


async def test_composed_and_decomposed_names_meet_in_one_room():
    async with member_of("Caf\u00e9") as alice, member_of(" Cafe\u0301 ") as bob:
        await say(bob, "same room")
        to_alice = await alice.receive_json_from()
    assert to_alice["message"] == "same room"
    assert to_alice["room"] == "Caf\u00e9"


@pytest.mark.parametrize(
    "room",
    ["café a/b", "a/b/c", "日本語 チャット", "👩\u200d💻 devs", "100% sure?", "#general", 'it\'s "quoted"', "x" * 100],
)
async def test_any_valid_name_works_as_a_room(room):
    async with member_of(room) as alice, member_of(room) as bob:
        await say(alice, "hi")
        frame = await bob.receive_json_from()
    assert frame["room"] == room
    assert frame["message"] == "hi"


async def test_an_encoded_slash_reaches_the_room_with_the_slash():
    # Daphne decodes the path, so /ws/chat/caf%C3%A9%20a%2Fb/ arrives as this text.
    decoded = WebsocketCommunicator(application, "/ws/chat/café a/b/", headers=ALLOWED_ORIGIN)
    assert decoded.scope["path"] == "/ws/chat/café a/b/"
    connected, _ = await decoded.connect()
    assert connected
    async with member_of("café a/b") as encoded:
        await say(decoded, "through the slash")
        frame = await encoded.receive_json_from()
    await decoded.disconnect()
    assert frame["room"] == "café a/b"
    assert frame["message"] == "through the slash"


@pytest.mark.parametrize(
    ("room", "reason"),
    [
        ("x" * 101, "limit is 100"),
        ("..", "'..'"),
        (".", "'.'"),
        ("a\x00b", "U+0000"),
        ("private\ue000", "U+E000"),
        ("   ", "empty"),
    ],
)
async def test_an_invalid_room_is_explained_then_closed(room, reason):
    communicator = WebsocketCommunicator(application, "/ws/chat/" + room + "/", headers=list(ALLOWED_ORIGIN))
    connected, _ = await communicator.connect()
    assert connected, "the socket is accepted so that the browser can read the reason"
    text = await assert_error(communicator, "invalid_room")
    assert reason in text
    closing = await communicator.receive_output()
    assert closing == {"type": "websocket.close", "code": CLOSE_INVALID_ROOM}
    await communicator.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"https://evil.example",
        b"http://testserver.evil.example",
        b"http://eviltestserver",
        b"http://testserver:8080",  # another program on the same host name
        b"null",
    ],
)
async def test_a_page_on_another_site_cannot_open_a_socket(origin):
    communicator = communicator_for("lobby", headers=[(b"origin", origin), (b"host", b"testserver")])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


@pytest.mark.parametrize(
    "headers",
    [[], [(b"host", b"testserver")], [(b"origin", b"http://testserver")]],
    ids=["nothing", "no origin", "no host"],
)
async def test_a_socket_without_origin_and_host_is_refused(headers):
    communicator = communicator_for("lobby", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://testserver", b"testserver"),
        (b"https://localhost:8443", b"localhost:8443"),
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000"),
        (b"HTTP://TestServer", b"testserver"),
    ],
)
async def test_a_page_of_this_site_can_open_a_socket(origin, host):
    communicator = communicator_for("lobby", headers=[(b"origin", origin), (b"host", host)])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://127.0.0.1:1", b"127.0.0.1:8000"),  # same host name, another port
        (b"http://evil.example", b"evil.example"),  # matching, but not an allowed host
    ],
)
async def test_origin_must_be_this_exact_allowed_site(origin, host):
    communicator = communicator_for("lobby", headers=[(b"origin", origin), (b"host", host)])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_a_trusted_origin_may_open_a_socket(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com"]
    communicator = communicator_for(
        "lobby", headers=[(b"origin", b"https://chat.example.com"), (b"host", b"testserver")]
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


# Every kind of bad frame is decoded in chat/frames.py and tested there (tests/unit/test_frames.py);
# here, one of each error code shows that the consumer answers it and keeps the socket.
@pytest.mark.parametrize(
    ("frame", "code", "explanation"),
    [
        ("not json", "invalid_json", "must be JSON"),
        ("[1, 2]", "invalid_message", "JSON object"),
        ('{"message": 5}', "invalid_message", "not a number"),
        ('{"message": "   \\n\\t "}', "invalid_message", "Empty"),
    ],
)
async def test_a_bad_frame_is_explained_and_the_socket_keeps_working(frame, code, explanation):
    async with member_of("lobby") as alice:
        await alice.send_to(text_data=frame)
        assert explanation in await assert_error(alice, code)
        await assert_still_works(alice)


@pytest.mark.parametrize(
    "frame",
    ["[" * 2000, '{"message": ' + "[" * 2000, '{"message": ' + '{"a": ' * 2000],
    ids=["nested-arrays", "nested-arrays-in-message", "nested-objects-in-message"],
)
async def test_deeply_nested_json_is_refused_and_the_socket_keeps_working(frame):
    # A few kilobytes of brackets, well under the frame size limit, must not take the socket down.
    async with member_of("lobby") as alice:
        await alice.send_to(text_data=frame)
        await assert_error(alice, "invalid_json")
        await assert_still_works(alice)


def sendable_as_websocket_text(text):
    """Daphne encodes every text frame as UTF-8, as RFC 6455 requires; other text kills the socket."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def test_a_lone_surrogate_is_refused_and_never_reaches_the_room():
    # JSON allows the escape "\ud800" (half of an emoji); Python decodes it to a lone surrogate,
    # which no text frame can carry: broadcast, it would cost every member their socket.
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        await alice.send_to(text_data='{"message": "\\ud800 half an emoji"}')
        reply = await alice.receive_from()
        assert sendable_as_websocket_text(reply)
        assert "lone surrogate" in error_text(reply, "invalid_message")
        assert await bob.receive_nothing()
        await assert_still_works(alice)


async def test_bad_frames_are_answered_to_the_sender_only():
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        await alice.send_to(text_data="not json")
        await assert_error(alice, "invalid_json")
        assert await bob.receive_nothing()


async def test_a_binary_frame_is_refused_and_the_socket_keeps_working():
    async with member_of("lobby") as alice:
        await alice.send_to(bytes_data=b'{"message": "hi"}')
        assert "Binary frames" in await assert_error(alice, "binary_not_supported")
        await assert_still_works(alice)


async def test_a_message_at_the_length_limit_is_sent(settings):
    settings.CHAT_MESSAGE_MAX_LENGTH = 10
    async with member_of("lobby") as alice:
        await say(alice, "x" * 10)
        assert (await alice.receive_json_from())["message"] == "x" * 10


async def test_a_message_over_the_length_limit_is_refused(settings):
    settings.CHAT_MESSAGE_MAX_LENGTH = 10
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        await say(alice, "x" * 11)
        text = await assert_error(alice, "message_too_long")
        assert "11 characters" in text
        assert "limit is 10" in text
        assert await bob.receive_nothing()
        await assert_still_works(alice)


async def test_the_length_limit_counts_characters_not_json_escapes(settings):
    settings.CHAT_MESSAGE_MAX_LENGTH = 1000
    text = "é" * 1000
    frame = json.dumps({"message": text})  # every "é" becomes the six characters \u00e9
    assert len(frame) > 6000
    async with member_of("lobby") as alice:
        await alice.send_to(text_data=frame)
        assert (await alice.receive_json_from())["message"] == text


@pytest.mark.parametrize("limit", [10, 2000])
async def test_a_huge_frame_is_refused_without_being_parsed(settings, limit):
    settings.CHAT_MESSAGE_MAX_LENGTH = limit
    async with member_of("lobby") as alice:
        await alice.send_to(text_data=json.dumps({"message": "x" * (limit * 6 + 1024)}))
        text = await assert_error(alice, "message_too_long")
        assert f"limited to {limit} characters" in text
        await alice.send_to(text_data="y" * 1_000_000)
        await assert_error(alice, "message_too_long")
        await assert_still_works(alice)


async def test_a_ping_gets_a_pong_naming_the_replica():
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        await alice.send_json_to({"type": "ping"})
        assert await alice.receive_json_from() == {"type": "pong", "replica": REPLICA}
        assert await bob.receive_nothing()


async def test_without_replica_headers_frames_do_not_name_replicas(settings):
    settings.CHATSCALE_SHOW_REPLICA = False
    async with member_of("lobby") as alice:
        await alice.send_json_to({"type": "ping"})
        assert await alice.receive_json_from() == {"type": "pong"}
        await say(alice, "who serves me?")
        frame = await alice.receive_json_from()
    assert frame["message"] == "who serves me?"
    assert "from_replica" not in frame
    assert "to_replica" not in frame
    assert REPLICA not in json.dumps(frame)


async def test_sending_too_fast_is_rate_limited(frozen_rate_limit):
    frozen_rate_limit(burst=3)
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        for number in range(5):
            await say(alice, f"message {number}")
        to_alice = [await alice.receive_json_from() for _ in range(4)]
        to_bob = [await bob.receive_json_from() for _ in range(3)]
        assert await alice.receive_nothing()
        assert await bob.receive_nothing()

    delivered = [frame["message"] for frame in to_alice if frame["type"] == "chat.message"]
    refused = [frame for frame in to_alice if frame["type"] == "error"]
    assert delivered == ["message 0", "message 1", "message 2"]
    assert [frame["message"] for frame in to_bob] == delivered
    # One notice for the two refused messages: a flood never gets a flood of errors back.
    assert [frame["code"] for frame in refused] == ["rate_limited"]
    assert "at most 1 per second" in refused[0]["error"]


async def test_malformed_frames_count_against_the_rate_limit(frozen_rate_limit):
    frozen_rate_limit(burst=2)
    async with member_of("lobby") as alice:
        for _ in range(10):
            await alice.send_to(text_data="not json")
        codes = [(await alice.receive_json_from())["code"] for _ in range(3)]
        assert await alice.receive_nothing()
    assert codes == ["invalid_json", "invalid_json", "rate_limited"]


async def test_heartbeats_are_answered_while_chat_is_rate_limited(frozen_rate_limit):
    frozen_rate_limit(burst=1)
    async with member_of("lobby") as alice:
        await say(alice, "one")
        await say(alice, "two, refused")
        assert (await alice.receive_json_from())["message"] == "one"
        assert (await alice.receive_json_from())["code"] == "rate_limited"
        await alice.send_json_to({"type": "ping"})
        assert (await alice.receive_json_from())["type"] == "pong"


async def test_a_relentless_flood_is_disconnected(frozen_rate_limit, monkeypatch):
    frozen_rate_limit(burst=1)
    monkeypatch.setattr(consumers, "MAX_REFUSED_IN_A_ROW", 5)
    async with member_of("lobby") as alice:
        for number in range(7):
            await say(alice, f"flood {number}")
        frames = [await alice.receive_output() for _ in range(4)]
    texts = [json.loads(frame["text"]) for frame in frames[:3]]
    assert texts[0]["message"] == "flood 0"
    assert [text["code"] for text in texts[1:]] == ["rate_limited", "rate_limited"]
    assert "closing" in texts[2]["error"]
    assert frames[3] == {"type": "websocket.close", "code": consumers.CLOSE_POLICY_VIOLATION}
    # Daphne (autobahn) sends only 1000 and 3000-4999; anything else raises instead of closing.
    assert 4000 <= consumers.CLOSE_POLICY_VIOLATION <= 4999


async def test_the_rate_limit_is_per_connection(frozen_rate_limit):
    frozen_rate_limit(burst=1)
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        await say(alice, "from alice")
        await say(alice, "alice again")
        await say(bob, "from bob")
        to_alice = [await alice.receive_json_from() for _ in range(3)]
    # Alice's refusal and the broadcasts travel different ways, so their order may vary.
    assert sorted(frame.get("message", frame.get("code")) for frame in to_alice) == [
        "from alice",
        "from bob",
        "rate_limited",
    ]


async def test_a_message_that_cannot_be_stored_is_refused_and_the_socket_stays_open():
    async with member_of("lobby") as alice:
        history_store().fail = True
        await say(alice, "into the void")
        assert "not sent" in await assert_error(alice, "unavailable")
        await alice.send_json_to({"type": "ping"})
        assert (await alice.receive_json_from())["type"] == "pong"


async def test_a_stored_message_whose_broadcast_failed_is_not_lost():
    use_layer(GroupSendFails())
    async with member_of("lobby") as alice, member_of("lobby") as bob:
        await say(alice, "stored, not broadcast")
        # No error: the message is in the history. A live member gets it at its next heartbeat.
        assert await bob.receive_nothing(timeout=0.2)
        await bob.send_json_to({"type": "ping"})
        assert (await bob.receive_json_from())["type"] == "pong"
        late = await bob.receive_json_from()
        assert (late["message"], late["seq"]) == ("stored, not broadcast", 1)
    async with member_of("lobby") as later:
        assert [frame["message"] for frame in later.replayed] == ["stored, not broadcast"]


async def test_a_room_that_cannot_be_joined_is_reported_then_closed():
    use_layer(GroupAddFails())
    communicator = communicator_for("lobby")
    connected, _ = await communicator.connect()
    assert connected, "the socket is accepted so that the browser can read the reason"
    assert "temporarily unavailable" in await assert_error(communicator, "unavailable")
    assert await communicator.receive_output() == {"type": "websocket.close", "code": CLOSE_LAYER_UNAVAILABLE}
    await communicator.disconnect()


async def test_leaving_a_room_removes_the_socket_from_its_group(channel_layer):
    async with member_of("lobby"), member_of("lobby"):
        assert sum(len(members) for members in channel_layer.groups.values()) == 2
    assert not channel_layer.groups


async def test_leaving_survives_a_channel_layer_failure(caplog):
    use_layer(GroupDiscardFails())
    async with member_of("lobby") as bob:
        alice = communicator_for("lobby")
        connected, _ = await alice.connect()
        assert connected
        with caplog.at_level(logging.WARNING, logger="chat.consumers"):
            # Raises here if the consumer let the layer's failure escape.
            await alice.disconnect()
        await assert_still_works(bob)
    warnings = [record for record in caplog.records if record.name == "chat.consumers"]
    assert warnings, "a failed leave must be logged"
    assert "could not leave group chat.lobby." in warnings[0].getMessage()
    assert "it expires by itself" in warnings[0].getMessage()


# History, ids and resume. Every message is numbered in its room's history; a socket gets
# them in order, each once, and is told plainly when some are gone.


async def test_a_late_joiner_sees_the_recent_history(settings):
    settings.CHAT_HISTORY_ON_JOIN = 3
    async with member_of("lobby") as alice:
        for n in range(1, 6):
            await say(alice, f"message {n}")
            await alice.receive_json_from()
    async with member_of("lobby") as late:
        assert (late.welcome["last_id"], late.welcome["gap"], late.welcome["replaying"]) == (5, False, 3)
        assert [(f["seq"], f["message"], f["replayed"]) for f in late.replayed] == [
            (3, "message 3", True),
            (4, "message 4", True),
            (5, "message 5", True),
        ]


async def test_a_resuming_client_gets_exactly_what_it_missed():
    async with member_of("lobby") as alice:
        for n in range(1, 5):
            await say(alice, f"message {n}")
            await alice.receive_json_from()
        epoch = alice.welcome["epoch"]
    async with member_of("lobby", query=f"?epoch={epoch}&after=2") as back:
        assert (back.welcome["epoch"], back.welcome["gap"]) == (epoch, False)
        assert [f["seq"] for f in back.replayed] == [3, 4]
        await say(back, "and now live")
        assert (await back.receive_json_from())["seq"] == 5


async def test_a_client_from_a_lost_epoch_is_told_of_the_gap():
    async with member_of("lobby") as alice:
        await say(alice, "before the loss")
        await alice.receive_json_from()
        old_epoch = alice.welcome["epoch"]
    history_store().forget()
    async with member_of("lobby", query=f"?epoch={old_epoch}&after=1") as back:
        assert back.welcome["gap"] is True and back.welcome["epoch"] != old_epoch


async def test_a_bad_resume_is_explained_and_the_recent_history_is_shown():
    async with member_of("lobby") as alice:
        await say(alice, "hello")
        await alice.receive_json_from()
    communicator = communicator_for("lobby", query="?epoch=%3Cscript%3E&after=-1")
    connected, _ = await communicator.connect()
    assert connected
    assert "?epoch=" in await assert_error(communicator, "invalid_resume")
    await joined(communicator)
    assert [f["message"] for f in communicator.replayed] == ["hello"]
    await communicator.disconnect()


async def test_messages_that_overtook_each_other_are_delivered_in_order_each_once(channel_layer):
    async with member_of("lobby") as bob:
        group, store = group_name_for("lobby"), history_store()
        first = await store.append(group, {"type": "chat.message", "message": "first", "room": "lobby"})
        second = await store.append(group, {"type": "chat.message", "message": "second", "room": "lobby"})
        # The second broadcast arrives before the first: the hole is filled from history.
        await channel_layer.group_send(group, numbered({"message": "second"}, second.epoch, second.id))
        await channel_layer.group_send(group, numbered({"message": "first"}, first.epoch, first.id))
        frames = [await bob.receive_json_from(), await bob.receive_json_from()]
        assert [(f["seq"], f["message"]) for f in frames] == [(1, "first"), (2, "second")]
        assert await bob.receive_nothing(timeout=0.2), "the late copy of the first message was dropped"


async def test_a_new_epoch_in_the_live_stream_is_announced_as_a_gap(channel_layer):
    async with member_of("lobby") as bob:
        old_epoch = bob.welcome["epoch"]
        history_store().forget()
        group = group_name_for("lobby")
        stored = await history_store().append(group, {"type": "chat.message", "message": "after", "room": "lobby"})
        await channel_layer.group_send(group, numbered({"message": "after"}, stored.epoch, stored.id))
        gap = await bob.receive_json_from()
        assert gap == {"type": "gap", "epoch": stored.epoch, "after": 0} and stored.epoch != old_epoch
        assert (await bob.receive_json_from())["message"] == "after"


@pytest.mark.parametrize(
    "name",
    ["CLOSE_INVALID_ROOM", "CLOSE_UNKNOWN_PATH", "CLOSE_LAYER_UNAVAILABLE", "CLOSE_POLICY_VIOLATION", "CLOSE_RESUME"],
)
def test_every_close_code_is_one_daphne_can_send(name):
    # autobahn, under Daphne, raises on any other code instead of closing the socket.
    code = getattr(consumers, name)
    assert code == 1000 or 3000 <= code <= 4999, (name, code)


async def test_a_catch_up_racing_live_delivery_sends_each_message_once(channel_layer, monkeypatch):
    # The Redis watch calls catch_up from its own task while the consumer delivers live, and
    # a send may yield to other tasks (a server applying backpressure does).
    send_delivery = consumers.ChatConsumer.send_delivery

    async def yielding_send_delivery(self, event):
        await asyncio.sleep(0)
        await send_delivery(self, event)

    monkeypatch.setattr(consumers.ChatConsumer, "send_delivery", yielding_send_delivery)
    async with member_of("lobby") as bob:
        group, store = group_name_for("lobby"), history_store()
        stored = [
            await store.append(group, {"type": "chat.message", "message": f"m{n}", "room": "lobby"})
            for n in range(1, 4)
        ]
        for placed in stored:
            await channel_layer.group_send(group, numbered({"message": "live"}, placed.epoch, placed.id))
        # The consumer behind bob's socket, as the watch holds it.
        (consumer,) = [o for o in gc.get_objects() if isinstance(o, consumers.ChatConsumer) and o.group_name]
        await asyncio.gather(consumer.catch_up(), consumer.catch_up())
        seqs = []
        while not await bob.receive_nothing(timeout=0.2):
            seqs.append((await bob.receive_json_from())["seq"])
        assert seqs == [1, 2, 3]


async def test_a_late_broadcast_of_a_bygone_epoch_is_dropped_and_the_new_epoch_kept(channel_layer):
    # A flush under traffic: a hole is filled from the history, which has moved to a new
    # epoch; the old epoch's late broadcast must neither be sent nor shift the socket back.
    async with member_of("lobby") as bob:
        group, store = group_name_for("lobby"), history_store()
        old_epoch = bob.welcome["epoch"]
        store.forget()
        new = [await store.append(group, {"type": "chat.message", "message": f"n{n}", "room": "lobby"}) for n in (1, 2)]
        await channel_layer.group_send(group, numbered({"message": "late"}, old_epoch, 10))
        await channel_layer.group_send(group, numbered({"message": "n2"}, new[1].epoch, new[1].id))
        third = await store.append(group, {"type": "chat.message", "message": "n3", "room": "lobby"})
        await channel_layer.group_send(group, numbered({"message": "n3"}, third.epoch, third.id))
        frames = [await bob.receive_json_from() for _ in range(4)]
        assert frames[0] == {"type": "gap", "epoch": new[0].epoch, "after": 0}
        assert [(f["epoch"], f["seq"]) for f in frames[1:]] == [(new[0].epoch, 1), (new[0].epoch, 2), (new[0].epoch, 3)]
        assert await bob.receive_nothing(timeout=0.2)
