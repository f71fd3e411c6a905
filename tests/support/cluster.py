"""Helpers for tests that run against a real native cluster (deploy/native/cluster.py).

``RunningCluster`` starts the real supervisor as a subprocess, exactly as `make cluster`
does, and ``ChatClient`` is a WebSocket client whose reader thread answers Daphne's
pings the way a browser does.
"""

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class RunningCluster:
    """A native cluster started through deploy/native/cluster.py, stopped with SIGINT like Ctrl-C."""

    def __init__(self, run_dir, replicas=3, keep_going=True, env=None, extra_args=()):
        self.run_dir = Path(run_dir)
        command = [
            sys.executable,
            "-m",
            "deploy.native.cluster",
            "--port",
            "0",  # the supervisor picks a free port and records it in cluster.json
            "--replicas",
            str(replicas),
            "--run-dir",
            str(self.run_dir),
        ]
        if keep_going:
            command.append("--keep-going")
        command.extend(extra_args)
        self.output_path = self.run_dir.parent / f"{self.run_dir.name}-supervisor.log"
        self.output = open(self.output_path, "w")  # noqa: SIM115 (open for the cluster's lifetime; closed in stop())
        self.supervisor = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self.output, stderr=subprocess.STDOUT
        )
        self.state = self._wait_for_state(timeout=120)
        self.url = self.state["url"]
        self.ws_url = self.url.replace("http://", "ws://")

    def _wait_for_state(self, timeout):
        state_file = self.run_dir / "cluster.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.supervisor.poll() is not None:
                raise RuntimeError(f"cluster exited during start:\n{self.output_path.read_text()}")
            if state_file.exists():
                return json.loads(state_file.read_text())
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"cluster did not start within {timeout} s:\n{self.output_path.read_text()}")

    def process(self, name):
        return next(p for p in self.state["processes"] if p["name"] == name)

    @property
    def pids(self):
        return [p["pid"] for p in self.state["processes"]]

    def replica_names(self):
        return sorted(p["name"] for p in self.state["processes"] if p["role"] == "daphne")

    def stop(self, timeout=60):
        """Send SIGINT as Ctrl-C would and return the supervisor's exit status."""
        if self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGINT)
        try:
            return self.supervisor.wait(timeout=timeout)
        finally:
            self.output.close()

    def log(self):
        return self.output_path.read_text()

    def wait_for_log(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.2)
        return False


def http_get(url, timeout=10):
    """GET a URL; return (status, headers, body text) without raising on 4xx/5xx."""
    request = urllib.request.Request(url)  # noqa: S310 (test URLs)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (test URLs)
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def room_path(room_name):
    return "/ws/chat/" + urllib.parse.quote(room_name, safe="") + "/"


class ChatClient:
    """A WebSocket chat client with a reader thread, like a browser tab.

    The thread answers pings (websocket-client replies to a ping only while reading),
    counts them, and queues every text frame as decoded JSON, except the welcome frame and
    the history it announces, which it keeps in ``welcome`` and ``replayed``.
    """

    def __init__(self, ws_base, room_name, timeout=10, headers=None, resume=None, sockopt=(), queue_replayed=False):
        self.room_name = room_name
        # Cleared, the reader stops reading, as a client too slow to keep up would.
        self.reading = threading.Event()
        self.reading.set()
        self.welcome = None
        self.welcomed = threading.Event()
        self.replayed = []
        self.queue_replayed = queue_replayed
        query = f"?epoch={resume[0]}&after={resume[1]}" if resume else ""
        self.socket = websocket.create_connection(
            ws_base + room_path(room_name) + query,
            timeout=timeout,
            origin=ws_base.replace("ws://", "http://"),
            header=headers or [],
            sockopt=sockopt,
        )
        self.replica = self.socket.getheaders().get("x-replica")
        self.frames = queue.Queue()
        self.pings = 0
        self.closed = threading.Event()
        self.close_code = None
        self.socket.settimeout(None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            while True:
                self.reading.wait()
                opcode, frame = self.socket.recv_data_frame(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_PING:
                    self.pings += 1
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    decoded = json.loads(frame.data.decode())
                    # Stamped on arrival, so latency figures do not depend on when a test reads.
                    decoded["_received_at"] = time.perf_counter()
                    if decoded.get("type") == "welcome":
                        self.welcome = decoded
                        self.welcomed.set()
                    elif decoded.get("replayed") and not self.queue_replayed:
                        self.replayed.append(decoded)
                    else:
                        self.frames.put(decoded)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    if len(frame.data) >= 2:
                        self.close_code = int.from_bytes(frame.data[:2], "big")
                    return
        except (websocket.WebSocketException, OSError, ValueError):
            return
        finally:
            self.closed.set()

    def send(self, message):
        self.socket.send(json.dumps({"message": message}))

    def send_raw(self, text=None, binary=None):
        if binary is not None:
            self.socket.send_binary(binary)
        else:
            self.socket.send(text)

    def next_frame(self, timeout=5):
        return self.frames.get(timeout=timeout)

    def wait_for_message(self, text, timeout=5):
        """Return the chat frame carrying ``text``, skipping others; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.replica} client in {self.room_name!r} never received {text!r}")
            try:
                frame = self.frames.get(timeout=remaining)
            except queue.Empty:
                continue
            if frame.get("type") == "chat.message" and frame.get("message") == text:
                return frame

    def assert_nothing(self, wait=1.0):
        try:
            frame = self.frames.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"expected no frame in {self.room_name!r}, got {frame}")

    def close(self):
        with contextlib.suppress(websocket.WebSocketException, OSError):
            self.socket.close(timeout=1)


def clients_on_distinct_replicas(ws_base, room_name, count, attempts=30):
    """Open sockets until ``count`` of them sit on different replicas; close the extras."""
    chosen, extras = {}, []
    for _ in range(attempts):
        client = ChatClient(ws_base, room_name)
        if client.replica not in chosen:
            chosen[client.replica] = client
        else:
            extras.append(client)
        if len(chosen) == count:
            break
    for client in extras:
        client.close()
    if len(chosen) < count:
        for client in chosen.values():
            client.close()
        raise AssertionError(f"could not reach {count} distinct replicas in {attempts} connections: {sorted(chosen)}")
    return list(chosen.values())


def unique(text="msg"):
    """A message text no other test sends."""
    return f"{text}-{uuid.uuid4().hex[:8]}"


def close_all(clients):
    for client in clients:
        client.close()


def assert_delivered(sender, receivers, label="msg"):
    """``sender`` says something new; every receiver must get it. Returns the text."""
    text = unique(label)
    sender.send(text)
    for receiver in receivers:
        receiver.wait_for_message(text)
    return text


def assert_room_survives_losing(victim, survivors, ws_base, wait=20):
    """After ``victim``'s replica went away: its socket closes, the others still chat, and
    a new socket in the room (the victim reconnecting through nginx) joins them. Returns it."""
    assert victim.closed.wait(wait), f"the socket on {victim.replica} stayed open after its replica went away"
    assert_delivered(survivors[0], survivors, "after-loss")
    rejoined = ChatClient(ws_base, victim.room_name)
    assert_delivered(rejoined, [*survivors, rejoined], "rejoined")
    return rejoined
