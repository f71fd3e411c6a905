"""The native cluster for real: nginx, Gunicorn, three Daphne replicas and one Redis."""

import os
import queue
import signal
import statistics
import time
import urllib.parse
from pathlib import Path

import pytest
import websocket

from tests.support.cluster import (
    ChatClient,
    RunningCluster,
    assert_room_survives_losing,
    clients_on_distinct_replicas,
    close_all,
    http_get,
    pid_alive,
    unique,
)

ODD_ROOM_NAMES = [
    "lobby",
    "Salle de réunion n°2",
    "会议室",
    "a/b/c",
    "100% sure? #yes & <no>",
    "👩‍💻 dev team",
    "  padded  ",
    "..dots..",
    "x" * 100,
]


def test_pages_are_served_by_gunicorn_not_daphne(cluster):
    for path in ("/chat/", "/chat/%E4%BC%9A%E8%AE%AE%E5%AE%A4/", "/healthz/ready"):
        status, headers, body = http_get(cluster.url + path)
        assert status == 200, (path, body)
        assert headers["X-Replica"] == "gunicorn", path
    status, _, body = http_get(cluster.url + "/chat/%E4%BC%9A%E8%AE%AE%E5%AE%A4/")
    assert 'id="chat-log"' in body and "会议室" in body
    # Daphne answers health checks and nothing else.
    daphne_port = cluster.process("daphne-1")["port"]
    status, headers, body = http_get(f"http://127.0.0.1:{daphne_port}/chat/")
    assert status == 404 and "WebSockets" in body
    assert http_get(f"http://127.0.0.1:{daphne_port}/healthz/ready")[0] == 200


def test_static_files_come_from_nginx(cluster):
    status, headers, body = http_get(cluster.url + "/static/chat/room.js")
    assert status == 200 and "new WebSocket" in body
    assert "X-Replica" not in headers


def test_message_crosses_every_replica(cluster):
    clients = clients_on_distinct_replicas(cluster.ws_url, "cross-replica", 3)
    try:
        assert sorted(client.replica for client in clients) == cluster.replica_names()
        latencies = []
        for sender in clients:
            text = unique(f"from-{sender.replica}")
            sent = time.perf_counter()
            sender.send(text)
            for receiver in clients:
                frame = receiver.wait_for_message(text)
                assert frame["from_replica"] == sender.replica
                assert frame["to_replica"] == receiver.replica
                if receiver is not sender:
                    latencies.append((frame["_received_at"] - sent) * 1000)
        print(
            f"\ncross-replica delivery over {len(latencies)} deliveries: "
            f"median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
        )
    finally:
        close_all(clients)


def test_rooms_are_isolated(cluster):
    red = clients_on_distinct_replicas(cluster.ws_url, "red", 2)
    blue = clients_on_distinct_replicas(cluster.ws_url, "blue", 2)
    try:
        text = unique("only-red")
        red[0].send(text)
        for client in red:
            client.wait_for_message(text)
        for client in blue:
            client.assert_nothing(wait=1.0)
    finally:
        close_all(red + blue)


@pytest.mark.parametrize("room_name", ODD_ROOM_NAMES)
def test_odd_room_names_work_across_replicas(cluster, room_name):
    clients = clients_on_distinct_replicas(cluster.ws_url, room_name, 2)
    try:
        text = unique("odd")
        clients[0].send(text)
        for client in clients:
            assert client.wait_for_message(text)["room"] == room_name.strip()
        status, _, body = http_get(cluster.url + "/chat/" + urllib.parse.quote(room_name, safe="") + "/")
        assert status == 200
    finally:
        close_all(clients)


def test_unusable_room_name_is_explained(cluster):
    client = ChatClient(cluster.ws_url, "y" * 101)
    try:
        frame = client.next_frame()
        assert frame["type"] == "error" and frame["code"] == "invalid_room"
        assert "100" in frame["error"]
        assert client.closed.wait(5)
        assert client.close_code == 4400
    finally:
        client.close()
    status, _, body = http_get(cluster.url + "/chat/" + "y" * 101 + "/")
    assert status == 400 and "the limit is 100" in body


def test_bad_frames_get_errors_and_the_socket_keeps_working(cluster):
    sender, other = clients_on_distinct_replicas(cluster.ws_url, "bad-frames", 2)
    try:
        cases = [
            ({"text": "not json"}, "invalid_json"),
            ({"text": "[1, 2]"}, "invalid_message"),
            ({"text": '{"text": "hi"}'}, "invalid_message"),
            ({"text": '{"message": 42}'}, "invalid_message"),
            ({"text": '{"message": "   "}'}, "invalid_message"),
            ({"text": '{"message": "' + "z" * 5000 + '"}'}, "message_too_long"),
            ({"binary": b"\x00\x01binary"}, "binary_not_supported"),
        ]
        for frame_kwargs, code in cases:
            sender.send_raw(**frame_kwargs)
            reply = sender.next_frame()
            assert reply["type"] == "error" and reply["code"] == code, (frame_kwargs, reply)
            assert reply["error"]
        text = unique("still-works")
        sender.send(text)
        sender.wait_for_message(text)
        other.wait_for_message(text)
        # Nobody else saw the errors.
        other.assert_nothing(wait=0.5)
    finally:
        close_all([sender, other])


def test_oversized_frame_closes_only_that_socket(cluster):
    giant, other = clients_on_distinct_replicas(cluster.ws_url, "giant", 2)
    try:
        giant.send_raw(text='{"message": "' + "g" * (2 * 1024 * 1024) + '"}')
        # Daphne's 1 MiB limit (--websocket-max-message-size) drops the connection outright.
        assert giant.closed.wait(10), "a 2 MiB frame did not close the socket"
        text = unique("after-giant")
        other.send(text)
        other.wait_for_message(text)
    finally:
        close_all([giant, other])


def test_flood_is_limited_and_others_keep_chatting(cluster):
    flooder, bystander = clients_on_distinct_replicas(cluster.ws_url, "flood", 2)
    try:
        for index in range(200):
            flooder.send(f"flood-{index}")
        text = unique("after-flood")
        bystander.send(text)
        bystander.wait_for_message(text, timeout=10)
        frames = []
        while True:
            try:
                frames.append(flooder.next_frame(timeout=2))
            except queue.Empty:
                break
        limited = [f for f in frames if f.get("code") == "rate_limited"]
        delivered = [f for f in frames if f.get("type") == "chat.message" and f["message"].startswith("flood-")]
        assert limited, "a flood of 200 messages was never rate limited"
        assert 0 < len(delivered) < 200
    finally:
        close_all([flooder, bystander])


IDLE_SECONDS = int(os.environ.get("CHATSCALE_IDLE_SECONDS", "65"))


def test_idle_socket_still_delivers(cluster):
    """No application traffic for IDLE_SECONDS (set CHATSCALE_IDLE_SECONDS=600 for the 10-minute check)."""
    listener, talker = clients_on_distinct_replicas(cluster.ws_url, "idle", 2)
    try:
        time.sleep(IDLE_SECONDS)
        assert not listener.closed.is_set() and not talker.closed.is_set(), "an idle socket was closed"
        # Daphne's keepalive pings (every 20 s) are what keeps nginx and the socket alive.
        assert listener.pings >= IDLE_SECONDS // 20 - 1
        text = unique("after-idle")
        talker.send(text)
        listener.wait_for_message(text)
    finally:
        close_all([listener, talker])


def test_killed_replica_leaves_the_room_working(own_cluster):
    clients = clients_on_distinct_replicas(own_cluster.ws_url, "survivors", 3)
    victim = next(client for client in clients if client.replica == "daphne-2")
    survivors = [client for client in clients if client is not victim]
    try:
        os.kill(own_cluster.process("daphne-2")["pid"], signal.SIGKILL)
        # The client of the dead replica reconnects through nginx and lands on a live one.
        reconnected = assert_room_survives_losing(victim, survivors, own_cluster.ws_url)
        clients.append(reconnected)
        assert reconnected.replica in {"daphne-1", "daphne-3"}
        assert own_cluster.wait_for_log("daphne-2 (pid", timeout=10), own_cluster.log()
        assert "killed by signal SIGKILL" in own_cluster.log()
    finally:
        close_all(clients)


def test_cluster_stops_everything_when_a_process_dies(tmp_path):
    cluster = RunningCluster(tmp_path / "cluster", replicas=2, keep_going=False)
    try:
        os.kill(cluster.process("redis")["pid"], signal.SIGKILL)
        status = cluster.supervisor.wait(timeout=60)
    finally:
        cluster.stop()
    assert status == 1
    output = cluster.log()
    assert "redis (pid" in output and "killed by signal SIGKILL" in output
    assert "stopping the cluster because one of its processes died" in output
    assert not [pid for pid in cluster.pids if pid_alive(pid)]


def test_a_foreign_origin_is_refused_at_the_handshake(cluster):
    port = urllib.parse.urlsplit(cluster.url).port
    for origin in ("http://evil.example", f"http://127.0.0.1:{port + 1}"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(cluster.ws_url + "/ws/chat/lobby/", origin=origin, timeout=5)
        assert refused.value.status_code == 403, origin


def test_clients_cannot_pose_as_another_address(cluster):
    client = ChatClient(cluster.ws_url, "spoof", headers=["X-Forwarded-For: 6.6.6.6"])
    client.close()
    logs = "".join(Path(p["log"]).read_text() for p in cluster.state["processes"] if p["role"] == "daphne")
    assert "/ws/chat/spoof/" in logs
    assert "6.6.6.6" not in logs


def test_plain_http_on_the_socket_path_carries_one_replica_header(cluster):
    status, headers, _ = http_get(cluster.url + "/ws/chat/lobby/")
    assert status == 404
    assert len(headers.get_all("X-Replica")) == 1


def test_replica_names_can_be_hidden(tmp_path):
    cluster = RunningCluster(tmp_path / "cluster", replicas=2, env={"CHATSCALE_SHOW_REPLICA": "false"})
    try:
        status, headers, _ = http_get(cluster.url + "/chat/")
        assert status == 200 and "X-Replica" not in headers
        first, second = ChatClient(cluster.ws_url, "hidden"), ChatClient(cluster.ws_url, "hidden")
        try:
            assert first.replica is None and second.replica is None
            first.send("no names")
            frame = second.wait_for_message("no names")
            assert "from_replica" not in frame and "to_replica" not in frame
        finally:
            close_all([first, second])
    finally:
        assert cluster.stop() == 0


def test_handshake_floods_from_one_address_are_limited(own_cluster):
    statuses = [http_get(own_cluster.url + "/ws/chat/lobby/")[0] for _ in range(300)]
    # nginx lets bursts of 200 through, then 20 per second per address.
    assert statuses.count(429) > 50, statuses
    assert http_get(own_cluster.url + "/chat/")[0] == 200, "pages are not limited"
