"""The load test's accounting: what counts as expected, lost, duplicated and cross-replica."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "loadtest"))

from ledger import Ledger, judge  # noqa: E402


def room_of_three(lost=(), duplicated=(), latency=10.0):
    """Users a (replica 1), b and c (replica 2) in one room; a sends m1 and m2."""
    ledger = Ledger()
    for user, replica in (("a", "r1"), ("b", "r2"), ("c", "r2")):
        ledger.join(user, "room", replica, at=0.0)
    for message, sent_at in (("m1", 1.0), ("m2", 2.0)):
        ledger.sent[message] = ["room", sent_at, "r1"]
        for user, replica in (("a", "r1"), ("b", "r2"), ("c", "r2")):
            if (message, user) not in lost:
                ledger.received.append([message, user, latency, replica != "r1"])
    for message, user in duplicated:
        ledger.received.append([message, user, latency, True])
    ledger.close_all(at=100.0)
    return ledger


def test_full_delivery_passes():
    passed, lines = judge(room_of_three(), grace=5, min_delivery=0.999, max_cross_p99_ms=250)
    assert passed, lines
    assert "deliveries expected 6, delivered 6" in "\n".join(lines)
    assert "cross-replica expected 4, delivered 4" in "\n".join(lines)


def test_a_lost_cross_replica_message_fails():
    passed, lines = judge(room_of_three(lost={("m1", "b")}), grace=5, min_delivery=0.999, max_cross_p99_ms=250)
    assert not passed
    report = "\n".join(lines)
    assert "lost 1" in report and "cross-replica delivery ratio 75.0000%" in report


def test_duplicates_fail():
    passed, lines = judge(room_of_three(duplicated={("m2", "c")}), grace=5, min_delivery=0.999, max_cross_p99_ms=250)
    assert not passed and "duplicates 1" in "\n".join(lines)


def test_slow_cross_replica_delivery_fails():
    passed, lines = judge(room_of_three(latency=900), grace=5, min_delivery=0.999, max_cross_p99_ms=250)
    assert not passed and "p99 latency 900.0 ms exceeds 250" in lines[-1]


def test_members_who_left_or_joined_late_are_not_expected():
    ledger = room_of_three()
    ledger.members["c"][3] = 2.5  # left too soon (within the grace) for m1 and m2 to count
    ledger.join("d", "room", "r2", at=1.5)  # joined between m1 and m2, never received m1
    ledger.leave("d", at=100.0)
    ledger.received.append(["m2", "d", 10.0, True])
    passed, lines = judge(ledger, grace=5, min_delivery=0.999, max_cross_p99_ms=250)
    assert passed, lines
    # a and b get m1 and m2 (4), d gets m2 (1); nothing is expected of c.
    assert "deliveries expected 5, delivered 5" in "\n".join(lines)


def test_rooms_that_never_span_replicas_fail():
    ledger = Ledger()
    ledger.join("a", "room", "r1", at=0)
    ledger.join("b", "room", "r1", at=0)
    ledger.sent["m"] = ["room", 1.0, "r1"]
    ledger.received += [["m", "a", 5.0, False], ["m", "b", 5.0, False]]
    ledger.close_all(at=50)
    passed, lines = judge(ledger, grace=5, min_delivery=0.999, max_cross_p99_ms=250)
    assert not passed and "rooms did not span replicas" in lines[-1]


def test_worker_ledgers_merge():
    master, worker = Ledger(), room_of_three()
    master.merge(worker.export())
    assert judge(master, grace=5, min_delivery=0.999, max_cross_p99_ms=250)[0]
