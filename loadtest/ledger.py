"""Delivery accounting for the load test: who should have received which message, and who did.

Plain data, no locust: each locust process keeps one Ledger; in distributed mode the
workers send theirs to the master, which merges them before judging. A message counts as
expected for every member of its room who joined before it was sent and stayed connected
for at least ``grace`` seconds after; messages nobody could have been expected to get in
time (sent in the last ``grace`` seconds of a membership) are neither lost nor required.
"""

import statistics
from dataclasses import dataclass, field


@dataclass
class Ledger:
    """Everything one process saw: memberships, messages sent, messages received."""

    members: dict = field(default_factory=dict)  # user -> [room, replica, joined_at, left_at]
    sent: dict = field(default_factory=dict)  # message id -> [room, sent_at, sender replica]
    received: list = field(default_factory=list)  # [message id, user, latency ms, cross-replica]

    def join(self, user, room, replica, at):
        self.members[user] = [room, replica, at, None]

    def leave(self, user, at):
        if user in self.members and self.members[user][3] is None:
            self.members[user][3] = at

    def close_all(self, at):
        for user in self.members:
            self.leave(user, at)

    def export(self):
        return {"members": self.members, "sent": self.sent, "received": self.received}

    def merge(self, exported):
        self.members.update(exported["members"])
        self.sent.update(exported["sent"])
        self.received.extend(exported["received"])


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def judge(ledger, grace, min_delivery, max_cross_p99_ms):
    """Return (passed, report lines) for a merged ledger."""
    by_room = {}
    for user, (room, replica, joined, left) in ledger.members.items():
        by_room.setdefault(room, []).append((user, replica, joined, left))
    got = {}
    duplicates = 0
    for message_id, user, _latency, _cross in ledger.received:
        key = (message_id, user)
        duplicates += key in got
        got[key] = True
    expected = delivered = expected_cross = delivered_cross = 0
    for message_id, (room, sent_at, sender_replica) in ledger.sent.items():
        for user, replica, joined, left in by_room.get(room, []):
            if joined > sent_at or left is None or left < sent_at + grace:
                continue
            cross = replica != sender_replica
            expected += 1
            expected_cross += cross
            if (message_id, user) in got:
                delivered += 1
                delivered_cross += cross
    cross_latencies = [latency for _, _, latency, cross in ledger.received if cross]
    ratio = delivered / expected if expected else 0.0
    cross_ratio = delivered_cross / expected_cross if expected_cross else 0.0
    p50, p95, p99 = (percentile(cross_latencies, f) for f in (0.50, 0.95, 0.99))
    replicas = sorted({replica for _, replica, _, _ in ledger.members.values()})
    failures = []
    if expected_cross == 0:
        failures.append("no cross-replica delivery was expected: rooms did not span replicas (more users?)")
    if ratio < min_delivery:
        failures.append(f"delivery ratio {ratio:.4%} is below {min_delivery:.4%}")
    if expected_cross and cross_ratio < min_delivery:
        failures.append(f"cross-replica delivery ratio {cross_ratio:.4%} is below {min_delivery:.4%}")
    if p99 is None or p99 > max_cross_p99_ms:
        shown = "unknown" if p99 is None else f"{p99:.1f}"
        failures.append(f"cross-replica p99 latency {shown} ms exceeds {max_cross_p99_ms} ms")
    lines = [
        f"users {len(ledger.members)} on replicas {', '.join(map(str, replicas))}; messages sent {len(ledger.sent)}",
        f"deliveries expected {expected}, delivered {delivered} ({ratio:.4%}); "
        f"lost {expected - delivered}; duplicates {duplicates}",
        f"cross-replica expected {expected_cross}, delivered {delivered_cross} ({cross_ratio:.4%})",
        "cross-replica latency ms: "
        + (
            f"p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  mean {statistics.mean(cross_latencies):.1f}"
            if cross_latencies
            else "none"
        ),
    ]
    if duplicates:
        failures.append(f"{duplicates} duplicate deliveries")
    verdict = "PASS" if not failures else "FAIL: " + "; ".join(failures)
    return not failures, [*lines, f"verdict: {verdict}"]
