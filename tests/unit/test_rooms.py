"""Room names as people type them, and the channel-layer group names derived from them."""

import re
import unicodedata

import pytest
from channels.layers import BaseChannelLayer

from chat.rooms import InvalidRoomName, group_name_for, normalize_room_name

# The rule every channel layer enforces on group names (channels.layers.BaseChannelLayer).
GROUP_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,99}$")

VARIED_NAMES = [
    "lobby",
    "Lobby",
    "a",
    "Café",
    "Cafe",
    "cafe",
    "日本",
    "中国",
    "a b",
    "a-b",
    "a_b",
    "a.b",
    "a/b",
    "a%2Fb",
    "100%",
    "why?",
    "#general",
    'it\'s "quoted"',
    "👩\u200d💻 devs",
    "👍",
    "Ελληνικά",
    "עברית",
    "-",
    "---",
    "...",
    ". .",
    "x" * 100,
    "é" * 100,
    "日" * 100,
    "a" * 40 + "b",
    "a" * 40 + "c",
]


def valid_for_channels(name):
    """True when channels' own validator accepts ``name`` as a group name."""
    return BaseChannelLayer().require_valid_group_name(name)


def test_decomposed_and_composed_forms_are_one_room():
    composed = "Caf\u00e9"
    decomposed = "Cafe\u0301"
    assert composed != decomposed
    assert normalize_room_name(composed) == normalize_room_name(decomposed) == composed


def test_surrounding_whitespace_is_removed_and_inner_whitespace_kept():
    assert normalize_room_name("  my room \t") == "my room"
    assert normalize_room_name("\u3000全角\u3000") == "全角"


@pytest.mark.parametrize("raw", ["", " ", "\t\n ", "\u3000"])
def test_empty_or_blank_names_are_refused(raw):
    with pytest.raises(InvalidRoomName, match="empty"):
        normalize_room_name(raw)


def test_a_name_at_the_length_limit_is_accepted():
    assert normalize_room_name("x" * 100) == "x" * 100


def test_a_name_over_the_length_limit_is_refused_with_the_limit():
    with pytest.raises(InvalidRoomName) as caught:
        normalize_room_name("x" * 101)
    assert "101" in str(caught.value)
    assert "limit is 100" in str(caught.value)


def test_length_is_counted_after_normalization():
    # 100 visible characters typed in decomposed form are 200 code points before NFC.
    assert normalize_room_name("e\u0301" * 100) == "\u00e9" * 100


def test_surrounding_whitespace_does_not_count_towards_the_limit():
    assert normalize_room_name("  " + "x" * 100 + "  ") == "x" * 100


@pytest.mark.parametrize("raw", [".", "..", " .. "])
def test_dot_names_are_refused(raw):
    with pytest.raises(InvalidRoomName, match=r"'\.' and '\.\.'"):
        normalize_room_name(raw)


@pytest.mark.parametrize(
    "raw",
    ["a\x00b", "line\nbreak", "tab\tinside", "del\x7f", "private\ue000use", "bell\x07"],
)
def test_control_and_private_use_characters_are_refused(raw):
    with pytest.raises(InvalidRoomName, match=r"control character \(U\+[0-9A-F]{4}\)"):
        normalize_room_name(raw)


def test_the_refused_character_is_named():
    with pytest.raises(InvalidRoomName, match=r"U\+E000"):
        normalize_room_name("a\ue000")


@pytest.mark.parametrize(
    "raw",
    [
        "👩\u200d💻",
        "👨\u200d👩\u200d👧\u200d👦 family",
        "❤\ufe0f",
        "a/b",
        "a//b/",
        "100%",
        "why?",
        "#general",
        "it's",
        '"quoted"',
        "<script>alert(1)</script>",
        "日本語のチャット",
    ],
)
def test_punctuation_emoji_and_any_script_are_accepted_unchanged(raw):
    assert normalize_room_name(raw) == raw


@pytest.mark.parametrize("raw", [None, 42, b"lobby", ["lobby"]])
def test_non_text_is_refused(raw):
    with pytest.raises(InvalidRoomName, match="must be text"):
        normalize_room_name(raw)


def test_code_that_catches_value_error_gets_the_reason_in_words():
    # InvalidRoomName is a ValueError, so generic callers (forms, converters) handle it too.
    with pytest.raises(ValueError, match="^'.' and '..' cannot be room names; add another character.$") as caught:
        normalize_room_name("..")
    assert type(caught.value) is InvalidRoomName


@pytest.mark.parametrize("name", VARIED_NAMES)
def test_group_names_satisfy_channels_rules(name):
    group = group_name_for(normalize_room_name(name))
    assert GROUP_NAME.match(group), group
    assert valid_for_channels(group)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Café", "Cafe"),
        ("日本", "中国"),
        ("a b", "a-b"),
        ("a/b", "a-b"),
        ("Lobby", "lobby"),
        ("👍", "👎"),
        ("a" * 40 + "b", "a" * 40 + "c"),
    ],
)
def test_names_with_colliding_slugs_get_distinct_groups(first, second):
    assert group_name_for(first) != group_name_for(second)


def test_all_varied_names_get_pairwise_distinct_groups():
    rooms = {normalize_room_name(name) for name in VARIED_NAMES}
    groups = {group_name_for(room) for room in rooms}
    assert len(groups) == len(rooms)


def test_the_same_name_always_gives_the_same_group():
    assert group_name_for("Café") == group_name_for("Café")
    assert group_name_for(normalize_room_name("Cafe\u0301 ")) == group_name_for("Café")


def test_the_group_name_keeps_a_readable_slug():
    assert group_name_for("Café Society").startswith("chat.cafe-society.")
    assert group_name_for("日本").startswith("chat.room.")


@pytest.mark.parametrize("character", ["x", "é", "日", "👍", "-", "."])
def test_the_longest_allowed_room_name_still_gives_a_valid_group(character):
    name = normalize_room_name(character * 100)
    assert len(name) == 100
    group = group_name_for(name)
    assert GROUP_NAME.match(group), group
    assert valid_for_channels(group)


def test_every_unicode_letter_block_sample_gives_a_valid_group():
    # A property-style sweep: one name per block of 256 code points that has a usable letter.
    checked = 0
    for start in range(0x20, 0x30000, 0x100):
        letters = [chr(code) for code in range(start, start + 0x100) if unicodedata.category(chr(code)).startswith("L")]
        if not letters:
            continue
        # NFC can expand a character to up to three, so 30 letters stay within the limit.
        name = normalize_room_name("".join(letters[:30]))
        group = group_name_for(name)
        assert GROUP_NAME.match(group), (hex(start), group)
        assert valid_for_channels(group)
        checked += 1
    assert checked > 100


def test_emoji_newer_than_this_python_are_accepted():
    # U+1FAE8 (shaking face, Unicode 15) is unassigned in Python 3.11's tables, yet
    # browsers send it; refusing it would call an emoji a "control character".
    assert normalize_room_name("\U0001fae8 party") == "\U0001fae8 party"


@pytest.mark.parametrize("name", ["\u200b", "\u200b\u200d", "\u2060 \u200b"])
def test_names_made_only_of_invisible_characters_are_refused(name):
    with pytest.raises(InvalidRoomName, match="only of invisible characters"):
        normalize_room_name(name)
