"""Liveness and readiness for both server roles (Gunicorn and Daphne).

Liveness says the process answers; readiness also checks that the database and the
Redis channel layer are reachable, so a load balancer stops sending traffic to a
replica that cannot deliver messages.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from chat import replica
from chat.asgi_types import Receive, Scope, Send

logger = logging.getLogger(__name__)

# An HTTP status and the JSON report that goes with it.
Report = tuple[int, dict[str, Any]]


def check_database() -> None:
    """Run a trivial query; raises when the database is unreachable."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    """Ping the channel layer's Redis; raises when it is unreachable."""
    timeout = settings.HEALTH_CHECK_TIMEOUT
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def readiness_report(role: str) -> Report:
    """Run every check and return (HTTP status, report dict)."""
    checks: dict[str, str] = {}
    for name, check in (("database", check_database), ("redis", check_redis)):
        try:
            check()
            checks[name] = "ok"
        except Exception:  # the report names the failing check instead of crashing the probe
            # The endpoint is public (through nginx): details such as hosts and users go to
            # the log, not into the response.
            logger.warning("readiness check %r failed", name, exc_info=True)
            checks[name] = "error"
    ready = all(result == "ok" for result in checks.values())
    return (200 if ready else 503), {"status": "ok" if ready else "unavailable", "role": role, "checks": checks}


def liveness_report(role: str) -> Report:
    """The process is up and able to answer."""
    return 200, {"status": "ok", "role": role}


def _readiness_in_thread(role: str) -> Report:
    # Django database connections belong to the thread that opened them; clean up so a
    # long-running Daphne never holds a connection the database already dropped.
    close_old_connections()
    try:
        return readiness_report(role)
    finally:
        close_old_connections()


HEALTH_PATHS: dict[str, Callable[[str], Report]] = {
    "/healthz/live": liveness_report,
    "/healthz/ready": _readiness_in_thread,
}


async def asgi_http_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Daphne's only HTTP answer: health checks. Pages are Gunicorn's job, behind nginx."""
    handler = HEALTH_PATHS.get(scope["path"])
    if handler is not None and scope["method"] in ("GET", "HEAD"):
        status, report = await sync_to_async(handler, thread_sensitive=False)("asgi")
        body = json.dumps(report).encode()
        content_type = b"application/json"
    else:
        status = 404
        body = b"Not found. This Daphne replica serves WebSockets under /ws/ and health checks under /healthz/.\n"
        content_type = b"text/plain; charset=utf-8"
    headers = [(b"content-type", content_type), (b"cache-control", b"no-store")]
    headers += [(name.lower().encode(), value.encode()) for name, value in replica.response_headers()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
