"""Locust: chat users that prove a message sent on one replica reaches every room member on all replicas.

    make loadtest HOST=http://127.0.0.1:8000 USERS=30 SPAWN_RATE=10 RUN_TIME=60s

Each user joins a room (rooms of --room-size users, so every room spans replicas), learns
its replica from the handshake's X-Replica header, and sends a message every
--message-interval seconds carrying a unique id, its send time and its replica. Every
message received is a locust request ("deliver cross-replica" or "deliver same-replica")
whose response time is the real delivery latency. At the end the ledger of what every
member should have received is compared with what arrived; the run exits non-zero when
the delivery ratio or the cross-replica p99 latency misses its threshold (locust.conf).
"""

import itertools
import json
import time
import uuid

import chaos
import gevent
import websocket
from ledger import Ledger, judge
from locust import User, events, task
from locust.runners import MasterRunner, WorkerRunner

LEDGER = Ledger()
USER_NUMBERS = itertools.count()
WORKER_LEDGERS = []
CHAOS = []  # the chaos greenlet, when --chaos


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    group = parser.add_argument_group("chatscale")
    group.add_argument("--room-size", type=int, default=6, help="users per room (default 6)")
    group.add_argument("--message-interval", type=float, default=1.0, help="seconds between a user's messages")
    group.add_argument("--min-delivery-ratio", type=float, default=0.999, help="fail below this delivery ratio")
    group.add_argument("--max-cross-p99-ms", type=float, default=250.0, help="fail above this cross-replica p99")
    group.add_argument("--grace-seconds", type=float, default=5.0, help="time a delivery may take to count")
    group.add_argument(
        "--max-reconnect-p99-ms",
        type=float,
        default=5000.0,
        help="fail above this p99 from a lost connection to resume",
    )
    group.add_argument(
        "--chaos",
        action="store_true",
        help="mid-run, kill a Daphne replica and later Redis (SIGKILL) of the native cluster in --cluster-state",
    )
    group.add_argument(
        "--cluster-state", default=".run/cluster/cluster.json", help="the native cluster's cluster.json, for --chaos"
    )
    group.add_argument("--chaos-after", type=float, default=8.0, help="seconds into the run of the first fault")


def record(name, started, length=0, error=None):
    """Report one measurement to locust's statistics (response time in milliseconds)."""
    events.request.fire(
        request_type="WS",
        name=name,
        response_time=(time.time() - started) * 1000,
        response_length=length,
        exception=error,
        context={},
    )


class ChatUser(User):
    """A chat room member that resumes after a lost connection, as the room page does.

    It keeps the epoch and the id of the last message it got; when its socket is closed or
    dropped it reconnects (through nginx, to any replica) with ``?epoch=&after=`` and gets
    what it missed from the room's history. Its own messages that the room never accepted
    (the socket died first, or an error frame refused them) are withdrawn from the ledger:
    the page gives those back to the person who typed them.
    """

    abstract = True

    def wait_time(self):
        return self.environment.parsed_options.message_interval

    def on_start(self):
        options = self.environment.parsed_options
        number = next(USER_NUMBERS)
        self.user_id = uuid.uuid4().hex
        self.room = f"load-{number // options.room_size}"
        self.closing = False
        self.socket = None
        self.epoch, self.last_seq = None, 0
        self.pending = {}  # own message id -> sent, not yet seen back
        self.replay_left = 0
        self.connect()
        LEDGER.join(self.user_id, self.room, self.replica, time.time())
        self.reader = gevent.spawn(self.read)

    def connect(self):
        """Open the socket (resuming when this user has been in the room before); raise on failure."""
        base = self.host.replace("http", "ws", 1).rstrip("/") + f"/ws/chat/{self.room}/"
        url = base + (f"?epoch={self.epoch}&after={self.last_seq}" if self.epoch else "")
        started = time.time()
        try:
            self.socket = websocket.create_connection(url, origin=self.host.rstrip("/"), timeout=10)
        except Exception as error:
            record("connect", started, error=error)
            raise
        self.replica = self.socket.getheaders().get("x-replica")
        if not self.replica:
            record("connect", started, error=Exception("no X-Replica header: is CHATSCALE_SHOW_REPLICA off?"))
        else:
            record("connect", started)

    def reconnect(self):
        """Resume after a lost connection, backing off as the page does; True once connected."""
        lost_at, delay = time.time(), 0.25
        self.socket = None
        while not self.closing:
            try:
                self.connect()
            except Exception:
                gevent.sleep(delay)
                delay = min(delay * 2, 4)
                continue
            LEDGER.reconnects.append(time.time() - lost_at)
            record("resume", lost_at)
            return True
        return False

    def read(self):
        while True:
            try:
                text = self.socket.recv()
                if not text:
                    raise websocket.WebSocketConnectionClosedException("closed by the server")
            except Exception as error:
                if self.closing:
                    return
                record("connection lost", time.time(), error=error)
                if not self.reconnect():
                    return
                continue
            self.take(json.loads(text), len(text))

    def take(self, frame, length):
        kind = frame.get("type")
        if kind == "error":
            record("error frame", time.time(), error=Exception(f"{frame.get('code')}: {frame.get('error')}"))
            if frame.get("code") in ("unavailable", "rate_limited") and self.pending:
                LEDGER.withdraw(self.pending.popitem()[0])  # refused: the sender is told
        elif kind in ("welcome", "gap"):
            if frame.get("gap") or kind == "gap":
                LEDGER.gaps.setdefault(self.user_id, []).append(time.time())
            if frame["epoch"] != self.epoch:
                self.epoch, self.last_seq = frame["epoch"], 0
            if kind == "welcome":
                self.replay_left = frame["replaying"]
                if not self.replay_left:
                    self.replay_done()
        elif kind == "chat.message":
            self.epoch, self.last_seq = frame.get("epoch", self.epoch), frame.get("seq", self.last_seq)
            replayed = bool(frame.get("replayed"))
            try:
                payload = json.loads(frame["message"])
            except (ValueError, TypeError):
                payload = None  # another client's plain text
            if isinstance(payload, dict) and "id" in payload:
                self.pending.pop(payload["id"], None)
                cross = payload["replica"] != self.replica
                latency = (time.time() - payload["sent_at"]) * 1000
                LEDGER.received.append([payload["id"], self.user_id, latency, cross, replayed])
                if not replayed:
                    record("deliver cross-replica" if cross else "deliver same-replica", payload["sent_at"], length)
            if replayed and self.replay_left:
                self.replay_left -= 1
                if not self.replay_left:
                    self.replay_done()

    def replay_done(self):
        """After a resume's history: own messages not in it never reached the server."""
        for message_id in self.pending:
            LEDGER.withdraw(message_id)
        self.pending.clear()

    @task
    def say(self):
        if self.socket is None:
            return  # reconnecting: a person waits too
        message_id, sent_at = uuid.uuid4().hex, time.time()
        text = json.dumps({"message": json.dumps({"id": message_id, "sent_at": sent_at, "replica": self.replica})})
        try:
            self.socket.send(text)
        except Exception:
            return  # never sent: nothing to account for
        LEDGER.sent[message_id] = [self.room, sent_at, self.replica]
        self.pending[message_id] = sent_at

    def on_stop(self):
        self.closing = True
        LEDGER.leave(self.user_id, time.time())
        if self.socket is not None:
            self.socket.close()
        self.reader.kill()


class RoomMember(ChatUser):
    """The one kind of user: joins, talks at a steady pace, listens."""


def receive_worker_ledger(environment, msg, **kwargs):
    """On the master: keep a worker's ledger for the verdict."""
    WORKER_LEDGERS.append(msg.data)


@events.init.add_listener
def on_init(environment, **kwargs):
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message("chatscale-ledger", receive_worker_ledger)


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    if environment.parsed_options.chaos and not isinstance(environment.runner, WorkerRunner):
        CHAOS.append(gevent.spawn(chaos.run, environment.parsed_options))


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):
    LEDGER.close_all(time.time())
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("chatscale-ledger", LEDGER.export())


@events.quitting.add_listener
def on_quitting(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    if not options.headless and not LEDGER.members and not WORKER_LEDGERS:
        print("chatscale: no users ran, so there is no verdict")
        return
    if isinstance(environment.runner, MasterRunner):
        gevent.sleep(2)  # let the workers' ledgers arrive
        for exported in WORKER_LEDGERS:
            LEDGER.merge(exported)
        print(f"chatscale: merged the ledgers of {len(WORKER_LEDGERS)} worker(s)")
    passed, lines = judge(
        LEDGER,
        options.grace_seconds,
        options.min_delivery_ratio,
        options.max_cross_p99_ms,
        options.max_reconnect_p99_ms,
    )
    if options.chaos:
        faults = CHAOS[0].value if CHAOS and CHAOS[0].ready() else None
        if not faults or not faults.get("done"):
            passed = False
            lines.append("verdict: FAIL: the chaos did not happen as planned (" + str(faults) + ")")
        lines.insert(0, "chaos: " + "; ".join((faults or {}).get("events", ["none"])))
    print("\n".join(["", "chatscale load test", *("  " + line for line in lines)]))
    # The ledger decides, not locust's count of failed requests: a chaos run loses connections
    # on purpose, and what matters is whether it lost messages.
    environment.process_exit_code = 0 if passed else 1
