"""Room history against a real Redis: ids, bounds, epochs, and what a resuming client gets."""

import asyncio

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from chat.history import RoomHistory
from tests.support.redis_server import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
async def redis(redis_url):
    # As the app does: writers wait for a free connection instead of failing.
    client = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, max_connections=20, timeout=5))
    await client.flushall()
    yield client
    await client.aclose()


def history(redis, max_messages=5, idle_seconds=60):
    return RoomHistory(redis, "test", max_messages, idle_seconds)


async def append_texts(store, group, *texts):
    return [await store.append(group, {"message": text}) for text in texts]


async def test_ids_are_ordered_and_gapless_within_an_epoch(redis):
    store = history(redis)
    stored = await append_texts(store, "room", "a", "b", "c")
    assert [s.id for s in stored] == [1, 2, 3]
    assert len({s.epoch for s in stored}) == 1


async def test_concurrent_appends_from_many_writers_get_distinct_ids(redis):
    store = history(redis, max_messages=1000)
    stored = await asyncio.gather(*(store.append("busy", {"message": str(n)}) for n in range(200)))
    assert sorted(s.id for s in stored) == list(range(1, 201))


async def test_a_new_client_gets_the_recent_messages(redis):
    store = history(redis)
    await append_texts(store, "room", "a", "b", "c", "d")
    replay = await store.replay("room", None, None, recent=2)
    assert [(m["seq"], m["message"]) for m in replay.messages] == [(3, "c"), (4, "d")]
    assert replay.last_id == 4 and not replay.gap


async def test_a_resuming_client_gets_exactly_what_came_after_its_last_id(redis):
    store = history(redis)
    first, *_ = await append_texts(store, "room", "a", "b", "c")
    replay = await store.replay("room", first.epoch, 1, recent=50)
    assert [m["message"] for m in replay.messages] == ["b", "c"]
    assert not replay.gap
    caught_up = await store.replay("room", first.epoch, 3, recent=50)
    assert caught_up.messages == [] and not caught_up.gap


async def test_history_is_bounded_and_a_client_behind_the_bound_is_told(redis):
    store = history(redis, max_messages=3)
    stored = await append_texts(store, "room", "1", "2", "3", "4", "5", "6")
    assert await redis.xlen(store.keys("room")[1]) == 3
    replay = await store.replay("room", stored[0].epoch, 1, recent=50)
    assert [m["seq"] for m in replay.messages] == [4, 5, 6]
    assert replay.gap


async def test_a_flush_starts_a_new_epoch_and_old_clients_see_a_gap(redis):
    store = history(redis)
    before = await append_texts(store, "room", "a", "b")
    await redis.flushall()
    replay = await store.replay("room", before[0].epoch, 2, recent=50)
    assert replay.gap and replay.epoch != before[0].epoch and replay.last_id == 0
    after = await store.append("room", {"message": "c"})
    assert (after.epoch, after.id) == (replay.epoch, 1)


async def test_an_idle_room_expires(redis):
    store = history(redis, idle_seconds=1)
    await append_texts(store, "quiet", "a")
    await asyncio.sleep(1.2)
    assert await redis.exists(*store.keys("quiet")) == 0


async def test_rooms_are_separate(redis):
    store = history(redis)
    await append_texts(store, "one", "a", "b")
    (other,) = await append_texts(store, "two", "x")
    assert other.id == 1
    replay = await store.replay("two", None, None, recent=50)
    assert [m["message"] for m in replay.messages] == ["x"]


async def test_an_append_retried_after_it_ran_is_stored_once(redis):
    # A connection cut after the script ran but before its answer arrived: the retry finds the
    # message's marker and returns where it landed instead of storing it again.
    store = history(redis)
    group = "retried"
    keys = [*store.keys(group), f"test:history:{group}:appended:abc"]
    args = ["E", '{"message":"once"}', 5, 60_000, "abc"]
    first = await store._append(keys=keys, args=args)
    again = await store._append(keys=keys, args=args)
    assert first == again
    assert await redis.xlen(store.keys(group)[1]) == 1


async def test_a_client_ahead_of_the_room_starts_a_new_epoch_and_is_told(redis):
    # Redis came back from an older snapshot: the client has ids the room no longer has.
    store = history(redis)
    stored = await append_texts(store, "room", "a", "b")
    replay = await store.replay("room", stored[0].epoch, 7, recent=50)
    assert replay.gap and replay.epoch != stored[0].epoch and replay.last_id == 0
    after = await store.append("room", {"message": "c"})
    assert (after.epoch, after.id) == (replay.epoch, 1)
