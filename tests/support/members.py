"""Room members that resume like the page does, and keep a ledger of what they received.

A ``ResumingMember`` holds one socket at a time. When the socket closes it reconnects
through nginx (to any replica) naming its epoch and last id, exactly as room.js does, and
records every message, every duplicate, every hole in the numbering and every gap the
server announced. Like the page, it knows which of its own messages it has not yet seen
come back: after a resume, those the room's history does not hold are *given back* (the
page puts them back into the input box), and those refused with an error frame are
*refused*. Tests compare the ledgers of all members with what was sent: every message is
delivered everywhere, given back or refused; none is lost without its sender knowing.
"""

import threading
import time

from tests.support.cluster import ChatClient


class ResumingMember:
    """One room member that reconnects and resumes by itself, with its ledger."""

    def __init__(self, ws_base, room, name="", sockopt=()):
        self.ws_base, self.room, self.name = ws_base, room, name
        self.sockopt = sockopt
        self.epoch, self.last = None, 0
        self.received = []  # (epoch, seq, text), in arrival order
        self.duplicates, self.holes, self.gaps, self.errors = [], [], [], []
        self.pending, self.given_back, self.refused = [], [], []
        self.replay_left = 0
        self.reconnect_seconds = []
        self.closes = []  # (close code, when), for every socket the server closed
        self.replicas = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.client = self._connect()
        self.thread = threading.Thread(target=self._run, name=f"member-{name}", daemon=True)
        self.thread.start()

    def _connect(self):
        resume = (self.epoch, self.last) if self.epoch else None
        client = ChatClient(self.ws_base, self.room, resume=resume, sockopt=self.sockopt, queue_replayed=True)
        self.sockopt = ()  # socket options are for the first connection only
        if not wait_until(lambda: client.welcomed.is_set() or client.closed.is_set(), 10) or not client.welcome:
            client.close()
            raise ConnectionError(f"{self.name}: no welcome frame from {client.replica} (closed {client.close_code})")
        welcome = client.welcome
        with self.lock:
            self.replicas.append(client.replica)
            self._new_epoch(welcome["epoch"], welcome["gap"], after=self.last)
            self.replay_left = welcome["replaying"]
            if not self.replay_left:
                self._replay_done()
        return client

    def _replay_done(self):
        # The history since our last message is all here: what we sent and do not see in it
        # never reached the server.
        self.given_back.extend(self.pending)
        self.pending.clear()

    def _new_epoch(self, epoch, gap, after):
        if gap:
            self.gaps.append((epoch, after))
        if epoch != self.epoch:
            self.epoch, self.last = epoch, 0

    def _take(self, frame):
        kind = frame.get("type")
        if kind == "gap":
            self._new_epoch(frame["epoch"], True, frame["after"])
        elif kind == "error":
            self.errors.append(frame["code"])
            if frame["code"] in ("unavailable", "rate_limited") and self.pending:
                self.refused.append(self.pending.pop())
        elif kind == "chat.message":
            epoch, seq = frame["epoch"], frame["seq"]
            if epoch == self.epoch and seq <= self.last:
                self.duplicates.append((epoch, seq))
                return
            if epoch != self.epoch:
                self.holes.append(("unannounced epoch", epoch, seq))
                self.epoch, self.last = epoch, 0
            if seq != self.last + 1:
                self.holes.append((epoch, self.last, seq))
            self.received.append((epoch, seq, frame["message"]))
            self.last = seq
            if frame["message"] in self.pending:
                self.pending.remove(frame["message"])
            if frame.get("replayed") and self.replay_left:
                self.replay_left -= 1
                if not self.replay_left:
                    self._replay_done()

    def _run(self):
        while not self.stopping.is_set():
            try:
                frame = self.client.next_frame(timeout=0.1)
            except Exception:  # queue.Empty: nothing for now
                if self.client.closed.is_set() and self.client.frames.empty():
                    self._reconnect()
                continue
            with self.lock:
                self._take(frame)

    def _reconnect(self):
        started = time.monotonic()
        self.closes.append((self.client.close_code, started))
        delay = 0.25
        while not self.stopping.is_set():
            try:
                self.client = self._connect()
                self.reconnect_seconds.append(time.monotonic() - started)
                return
            except Exception:  # the server is not back yet: back off as the page does
                time.sleep(delay)
                delay = min(delay * 2, 4)

    def send(self, text):
        """Send through the current socket; False when it is closed right now."""
        with self.lock:
            try:
                self.client.send(text)
            except Exception:
                return False
            self.pending.append(text)
            return True

    def say(self, text, timeout=15):
        """Send ``text`` until the room accepts it, as a person resends what the page gave back."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answered = self.send(text) and wait_until(
                lambda: text not in self.pending, max(0.1, deadline - time.monotonic())
            )
            if answered and text in self.texts():
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: the room did not accept {text!r} within {timeout} s")

    def unaccounted(self):
        """Own messages neither seen back, given back nor refused (still in flight, or lost)."""
        with self.lock:
            return list(self.pending)

    def stop_reading(self):
        """Stop reading from the socket, like a client that cannot keep up."""
        self.client.reading.clear()

    def start_reading(self):
        """Read again (and find out whether the server dropped the socket meanwhile)."""
        self.client.reading.set()

    def texts(self, epoch=None):
        """The texts received (in one epoch, if given), in order."""
        with self.lock:
            return [text for e, _, text in self.received if epoch is None or e == epoch]

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.client.close()


def wait_until(condition, timeout, interval=0.05):
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
