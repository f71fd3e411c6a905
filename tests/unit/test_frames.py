"""The chat socket's frames, checked as pure functions: no socket, no channel layer."""

import json
import time

import pytest

from chat import frames
from chat.frames import ChatMessage, FrameError, Ping

LIMIT = 20


def decode(text, limit=LIMIT):
    return frames.decode(text, limit)


def test_a_message_frame_becomes_its_text_unchanged():
    text = 'héllo 👋 <b>bold</b> & "quotes" \\ back\nslash'
    assert decode(json.dumps({"message": text}), limit=100) == ChatMessage(text)


def test_extra_keys_beside_the_message_are_ignored():
    assert decode('{"message": "hi", "colour": "red"}') == ChatMessage("hi")


@pytest.mark.parametrize("frame", ['{"type": "ping"}', '{"type": "ping", "message": "hi"}'])
def test_a_ping_is_a_ping_whatever_else_it_carries(frame):
    assert decode(frame) == Ping()


def test_a_frame_of_another_type_is_checked_as_a_message():
    assert decode('{"type": "pong", "message": "hi"}') == ChatMessage("hi")
    assert decode('{"type": "pong"}').code == "invalid_message"


def test_a_binary_frame_is_refused():
    error = decode(None)
    assert error.code == "binary_not_supported"
    assert '{"message": "hi"}' in error.text


@pytest.mark.parametrize(
    ("frame", "code", "explanation"),
    [
        ("not json", "invalid_json", "must be JSON"),
        ("{'message': 'single quotes'}", "invalid_json", "must be JSON"),
        ("", "invalid_json", "must be JSON"),
        ("[1, 2]", "invalid_message", "JSON object"),
        ("42", "invalid_message", "JSON object"),
        ('"just text"', "invalid_message", "JSON object"),
        ("null", "invalid_message", "JSON object"),
        ("{}", "invalid_message", '"message" key'),
        ('{"text": "hi"}', "invalid_message", '"message" key'),
        ('{"message": null}', "invalid_message", "not null"),
        ('{"message": 5}', "invalid_message", "not a number"),
        ('{"message": 1.5}', "invalid_message", "not a number"),
        ('{"message": true}', "invalid_message", "not a boolean"),
        ('{"message": ["hi"]}', "invalid_message", "not an array"),
        ('{"message": {"text": "hi"}}', "invalid_message", "not an object"),
        ('{"message": ""}', "invalid_message", "Empty"),
        ('{"message": "   \\n\\t "}', "invalid_message", "Empty"),
        ('{"message": "\\ud800 half an emoji"}', "invalid_message", "lone surrogate"),
        ('{"message": "\\udfff"}', "invalid_message", "lone surrogate"),
    ],
)
def test_an_unusable_frame_is_an_error_with_a_code_and_an_explanation(frame, code, explanation):
    error = decode(frame)
    assert isinstance(error, FrameError)
    assert error.code == code
    assert explanation in error.text


@pytest.mark.parametrize(
    "frame",
    ["[" * 2000, '{"message": ' + "[" * 2000, '{"message": ' + '{"a": ' * 2000],
    ids=["nested-arrays", "nested-arrays-in-message", "nested-objects-in-message"],
)
def test_deeply_nested_json_is_an_error_not_a_crash(frame):
    assert decode(frame, limit=2000).code == "invalid_json"


def test_a_whole_emoji_written_as_a_surrogate_pair_is_accepted():
    assert decode('{"message": "\\ud83d\\udc4b"}') == ChatMessage("👋")


def test_a_message_at_the_length_limit_is_accepted_and_one_over_is_refused():
    assert decode(json.dumps({"message": "x" * LIMIT})) == ChatMessage("x" * LIMIT)
    error = decode(json.dumps({"message": "x" * (LIMIT + 1)}))
    assert error.code == "message_too_long"
    assert f"{LIMIT + 1} characters long; the limit is {LIMIT}" in error.text


def test_the_length_limit_counts_characters_not_json_escapes():
    frame = json.dumps({"message": "é" * LIMIT})  # every "é" becomes the six characters \u00e9
    assert len(frame) > LIMIT * 6
    assert decode(frame) == ChatMessage("é" * LIMIT)


def test_a_frame_too_large_to_hold_a_valid_message_is_refused_before_parsing():
    largest = LIMIT * frames.JSON_ESCAPE_GROWTH + frames.JSON_OVERHEAD
    # Not JSON at all: refused as too large only when parsing was skipped.
    assert decode("y" * largest).code == "invalid_json"
    error = decode("y" * (largest + 1))
    assert error.code == "message_too_long"
    assert f"limited to {LIMIT} characters" in error.text


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "null"), (True, "a boolean"), (3, "a number"), (2.5, "a number"), ([], "an array"), ({}, "an object")],
)
def test_json_type_names_read_like_the_sender_wrote_them(value, name):
    assert frames.json_type_name(value) == name


def test_an_error_frame_has_type_code_and_text():
    assert json.loads(frames.error_frame("invalid_json", "Frames must be JSON.")) == {
        "type": "error",
        "code": "invalid_json",
        "error": "Frames must be JSON.",
    }


def test_a_pong_names_the_replica_only_when_it_is_shown():
    assert json.loads(frames.pong_frame("daphne-2")) == {"type": "pong", "replica": "daphne-2"}
    assert json.loads(frames.pong_frame(None)) == {"type": "pong"}


def test_a_chat_event_carries_the_message_and_the_time_and_gets_its_id_from_the_history():
    before = time.time()
    event = frames.chat_event("hi", "lobby", "daphne-1")
    assert event["type"] == "chat.message"
    assert (event["message"], event["room"], event["from_replica"]) == ("hi", "lobby", "daphne-1")
    assert before <= event["sent_at"] <= time.time()
    placed = frames.numbered(event, "Ep0ch", 7)
    assert (placed["epoch"], placed["seq"], placed["id"]) == ("Ep0ch", 7, "Ep0ch-7")
    assert "replayed" not in placed
    assert frames.numbered(event, "Ep0ch", 7, replayed=True)["replayed"] is True


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", None),
        (b"epoch=Ab_-9&after=12", frames.Resume("Ab_-9", 12)),
        (b"after=0&epoch=x", frames.Resume("x", 0)),
    ],
)
def test_a_resume_is_read_from_the_query_string(query, expected):
    assert frames.decode_resume(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"epoch=x",
        b"after=3",
        b"epoch=x&after=-1",
        b"epoch=x&after=1.5",
        b"epoch=%3Cb%3E&after=1",
        b"epoch=&after=1",
        b"epoch=x&after=%C2%B2",  # a superscript two: a digit to isdigit(), not to int()
        b"epoch=x&after=" + b"9" * 5000,
    ],
)
def test_a_bad_resume_is_an_error_that_says_what_to_send(query):
    error = frames.decode_resume(query)
    assert isinstance(error, frames.FrameError) and error.code == "invalid_resume"
    assert "?epoch=" in error.text


def test_the_welcome_and_gap_frames():
    assert json.loads(frames.welcome_frame("E", 9, True, 3)) == {
        "type": "welcome",
        "epoch": "E",
        "last_id": 9,
        "gap": True,
        "replaying": 3,
    }
    assert json.loads(frames.gap_frame("E", 4)) == {"type": "gap", "epoch": "E", "after": 4}


def test_a_chat_event_without_a_shown_replica_names_none():
    assert "from_replica" not in frames.chat_event("hi", "lobby", None)


def test_a_delivered_frame_keeps_every_event_key_and_adds_the_receiving_replica():
    event = frames.chat_event("héllo", "café", "daphne-1")
    frame = frames.delivery_frame(event, "daphne-2")
    assert json.loads(frame) == {**event, "to_replica": "daphne-2"}
    assert "héllo" in frame, "text is sent as UTF-8, not as \\u escapes"


def test_a_delivered_frame_passes_on_only_the_wire_keys():
    event = {**frames.numbered(frames.chat_event("hi", "lobby", None), "E", 1), "internal": "not for clients"}
    assert set(json.loads(frames.delivery_frame(event, None))) == {
        "type",
        "message",
        "room",
        "id",
        "seq",
        "epoch",
        "sent_at",
    }
