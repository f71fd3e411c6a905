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

import gevent
import websocket
from ledger import Ledger, judge
from locust import User, events, task
from locust.runners import MasterRunner, WorkerRunner

LEDGER = Ledger()
USER_NUMBERS = itertools.count()
WORKER_LEDGERS = []


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    group = parser.add_argument_group("chatscale")
    group.add_argument("--room-size", type=int, default=6, help="users per room (default 6)")
    group.add_argument("--message-interval", type=float, default=1.0, help="seconds between a user's messages")
    group.add_argument("--min-delivery-ratio", type=float, default=0.999, help="fail below this delivery ratio")
    group.add_argument("--max-cross-p99-ms", type=float, default=250.0, help="fail above this cross-replica p99")
    group.add_argument("--grace-seconds", type=float, default=5.0, help="time a delivery may take to count")


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
    """A chat room member over one WebSocket (websocket-client cooperates with gevent)."""

    abstract = True

    def wait_time(self):
        return self.environment.parsed_options.message_interval

    def on_start(self):
        options = self.environment.parsed_options
        number = next(USER_NUMBERS)
        self.user_id = uuid.uuid4().hex
        self.room = f"load-{number // options.room_size}"
        self.closing = False
        url = self.host.replace("http", "ws", 1).rstrip("/") + f"/ws/chat/{self.room}/"
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
        LEDGER.join(self.user_id, self.room, self.replica, time.time())
        self.reader = gevent.spawn(self.read)

    def read(self):
        while True:
            try:
                text = self.socket.recv()
                if not text:
                    raise websocket.WebSocketConnectionClosedException("closed by the server")
            except Exception as error:
                if not self.closing:
                    record("connection lost", time.time(), error=error)
                LEDGER.leave(self.user_id, time.time())
                return
            frame = json.loads(text)
            if frame.get("type") == "error":
                record("error frame", time.time(), error=Exception(f"{frame.get('code')}: {frame.get('error')}"))
                continue
            if frame.get("type") != "chat.message" or frame.get("replayed"):
                # Replayed history (sent before this user joined) is not a live delivery.
                continue
            payload = json.loads(frame["message"])
            cross = payload["replica"] != self.replica
            LEDGER.received.append([payload["id"], self.user_id, (time.time() - payload["sent_at"]) * 1000, cross])
            record("deliver cross-replica" if cross else "deliver same-replica", payload["sent_at"], len(text))

    @task
    def say(self):
        message_id, sent_at = uuid.uuid4().hex, time.time()
        LEDGER.sent[message_id] = [self.room, sent_at, self.replica]
        self.socket.send(
            json.dumps({"message": json.dumps({"id": message_id, "sent_at": sent_at, "replica": self.replica})})
        )

    def on_stop(self):
        self.closing = True
        LEDGER.leave(self.user_id, time.time())
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
    passed, lines = judge(LEDGER, options.grace_seconds, options.min_delivery_ratio, options.max_cross_p99_ms)
    print("\n".join(["", "chatscale load test", *("  " + line for line in lines)]))
    if not passed:
        environment.process_exit_code = 1
