"""Benchmark: delivery latency of room messages across Daphne replicas, through nginx.

    make cluster                      # in one terminal
    make bench-latency HOST=http://127.0.0.1:8000 MESSAGES=500

One client per replica joins a room; each message is sent by one of them in turn, and the
time until every other client has it (sender's clock, same machine) is recorded. Prints
percentiles for cross-replica deliveries and the achieved message rate. Figures, not a
pass/fail: goals and thresholds belong to the locust suite.
"""

import argparse
import statistics
import sys
import time
import uuid

from tests.support.cluster import clients_on_distinct_replicas


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the cluster's nginx URL")
    parser.add_argument("--replicas", type=int, default=3, help="how many distinct replicas to spread clients over")
    parser.add_argument("--messages", type=int, default=300, help="messages to send (at most 9 per second per client)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.replicas < 2:
        parser.error("--messages must be positive and --replicas at least 2")
    ws_base = args.url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
    clients = clients_on_distinct_replicas(ws_base, f"bench-{uuid.uuid4().hex[:8]}", args.replicas)
    latencies = []
    started = time.perf_counter()
    try:
        for index in range(args.messages):
            sender = clients[index % len(clients)]
            text = f"bench-{index}-{uuid.uuid4().hex[:6]}"
            sent = time.perf_counter()
            sender.send(text)
            for receiver in clients:
                frame = receiver.wait_for_message(text, timeout=10)
                if receiver is not sender:
                    latencies.append((frame["_received_at"] - sent) * 1000)
            # Stay under the per-socket rate limit (10/s by default) of each sender.
            time.sleep(max(0.0, 0.11 / len(clients) - (time.perf_counter() - sent)))
    finally:
        for client in clients:
            client.close()
    elapsed = time.perf_counter() - started
    print(f"replicas: {', '.join(sorted(c.replica for c in clients))}")
    print(
        f"messages: {args.messages} in {elapsed:.1f} s ({args.messages / elapsed:.0f} msg/s sent, "
        f"{len(latencies) / elapsed:.0f} cross-replica deliveries/s)"
    )
    print(
        f"cross-replica latency ms: p50 {statistics.median(latencies):.2f}  p95 {percentile(latencies, 0.95):.2f}  "
        f"p99 {percentile(latencies, 0.99):.2f}  max {max(latencies):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
