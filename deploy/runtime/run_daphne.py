"""Run one Daphne replica with the flags that mysite/settings.py reads from the environment.

    python -m deploy.runtime.run_daphne     (from the project root, as start-daphne.sh does)

Every DAPHNE_* variable is parsed and checked once, by the settings module; this only turns
the settings into Daphne's command line, so a bad value stops it with the settings' message.

On SIGTERM the replica drains instead of dropping everything at once: it stops listening
(new sockets go to other replicas), closes its open sockets with CLOSE_RESUME spread over
DAPHNE_DRAIN_SECONDS so that their clients resume elsewhere without a stampede, then stops.

A client that does not read what it is sent would make its replica buffer without bound.
Every second the server looks at what each socket has waiting to be written; past
DAPHNE_MAX_SOCKET_BACKLOG_BYTES it drops that connection (a close frame could not get
through). The client reconnects and resumes from the history: the connection is dropped,
never the messages, and nobody else waits for it.
"""

import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from twisted.internet import reactor as twisted_reactor

from chat import replica

logger = logging.getLogger("chatscale.drain")
# Daphne installed Twisted's asyncio reactor when daphne.server was imported; Twisted's
# annotations describe the module, not the reactor in it.
reactor: Any = twisted_reactor

ASGI_APPLICATION = "mysite.asgi:application"


def daphne_argv() -> list[str]:
    """Daphne's command-line arguments, from the settings and chat/replica.py's server name."""
    return [
        "--bind",
        settings.DAPHNE_BIND,
        "--port",
        str(settings.DAPHNE_PORT),
        # Only nginx reaches Daphne, and nginx sets X-Forwarded-* itself (nginx/proxy-headers.conf).
        "--proxy-headers",
        "--ping-interval",
        str(settings.DAPHNE_PING_INTERVAL),
        "--ping-timeout",
        str(settings.DAPHNE_PING_TIMEOUT),
        "--websocket_timeout",
        str(settings.DAPHNE_WEBSOCKET_TIMEOUT),
        "--application-close-timeout",
        str(settings.DAPHNE_APPLICATION_CLOSE_TIMEOUT),
        "--server-name",
        replica.server_name(),
        ASGI_APPLICATION,
    ]


class DrainingServer(Server):
    """Daphne's server, with a SIGTERM that drains the replica's sockets before it stops."""

    def run(self) -> None:
        """Run as Daphne does, taking over SIGTERM once the reactor runs (Twisted installs its own first)."""
        self.ports: list[Any] = []
        self.draining = False
        reactor.callWhenRunning(signal.signal, signal.SIGTERM, self.on_sigterm)
        reactor.callLater(1, self.drop_slow_readers)
        super().run()

    def drop_slow_readers(self) -> None:
        """Drop every socket over the backlog limit that did not catch up at all since the last look.

        A client working through a long resume has a large backlog that shrinks: it is left
        alone. One that does not read, or reads slower than the room talks, is dropped.
        """
        limit = settings.DAPHNE_MAX_SOCKET_BACKLOG_BYTES
        for protocol in list(self.connections):
            if not isinstance(protocol, WebSocketProtocol):
                continue
            # Never on the first look: a resume's history may have just been written in one go.
            waiting, before = unsent_bytes(protocol.transport), getattr(protocol, "chatscale_backlog", float("inf"))
            protocol.chatscale_backlog = waiting
            if waiting > limit and waiting >= before:
                logger.warning(
                    "dropping a socket that does not keep up (%d bytes waiting, limit %d); it resumes from history",
                    waiting,
                    limit,
                )
                protocol.dropConnection(abort=True)
        reactor.callLater(1, self.drop_slow_readers)

    def listen_success(self, port: Any) -> None:
        """Keep the listening port, to stop accepting sockets when draining."""
        self.ports.append(port)
        super().listen_success(port)

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """Start draining from the reactor's thread; a second SIGTERM stops at once."""
        if self.draining:
            reactor.callFromThread(reactor.stop)
            return
        self.draining = True
        reactor.callFromThread(self.drain)

    def drain(self) -> None:
        """Stop listening, close every open socket for resume, spread over the drain time, then stop."""
        for port in self.ports:
            port.stopListening()
        sockets = [
            protocol
            for protocol in list(self.connections)
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN
        ]
        seconds = settings.DAPHNE_DRAIN_SECONDS
        logger.warning("SIGTERM: draining %d socket(s) over %s s, then stopping", len(sockets), seconds)
        for index, protocol in enumerate(sockets):
            reactor.callLater(seconds * index / max(len(sockets), 1), close_for_resume, protocol)
        reactor.callLater(seconds + 0.5, reactor.stop)


def unsent_bytes(transport: Any) -> int:
    """What a Twisted TCP transport holds that the kernel has not taken yet (0 if unknown)."""
    buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return buffered + getattr(transport, "_tempDataLen", 0)


def close_for_resume(protocol: Any) -> None:
    """Close one socket with CLOSE_RESUME: its client reconnects and resumes on another replica."""
    from chat.consumers import CLOSE_RESUME  # the app's module, loaded by now with Django

    if protocol.state == protocol.STATE_OPEN:
        protocol.sendClose(code=CLOSE_RESUME, reason="This server is restarting; resuming elsewhere.")


class DrainingCommandLineInterface(CommandLineInterface):
    """Daphne's command line, running the draining server."""

    server_class = DrainingServer


def main() -> None:
    """Start Daphne in the foreground, or exit with the settings' error."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    try:
        argv = daphne_argv()
    except ImproperlyConfigured as error:
        sys.exit(f"cannot start Daphne: {error}")
    DrainingCommandLineInterface().run(argv)


if __name__ == "__main__":
    main()
