"""Daphne's HTTP side: health checks and nothing else."""

import json

import pytest
from channels.testing import HttpCommunicator

from chat import health
from chat.health import asgi_http_app

REPLICA = "unit-test-replica"
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"


async def request(path, method="GET"):
    communicator = HttpCommunicator(asgi_http_app, method, path)
    response = await communicator.get_response(timeout=5)
    await communicator.wait()
    response["headers"] = {name.decode(): value.decode() for name, value in response["headers"]}
    return response


def broken(*args):
    raise ConnectionError("down")


async def test_liveness_answers_without_checking_dependencies(monkeypatch):
    # A replica whose Redis is down is not ready, but restarting it would not help.
    monkeypatch.setattr(health, "check_database", broken)
    monkeypatch.setattr(health, "check_redis", broken)
    response = await request("/healthz/live")
    assert response["status"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert response["headers"]["cache-control"] == "no-store"
    assert json.loads(response["body"]) == {"status": "ok", "role": "asgi"}


@pytest.mark.django_db(transaction=True)
async def test_readiness_reports_unreachable_redis(settings):
    settings.REDIS_URL = CLOSED_REDIS_URL
    settings.HEALTH_CHECK_TIMEOUT = 1
    response = await request("/healthz/ready")
    assert response["status"] == 503
    assert response["headers"]["content-type"] == "application/json"
    report = json.loads(response["body"])
    assert report["status"] == "unavailable"
    assert report["role"] == "asgi"
    assert report["checks"]["database"] == "ok"
    assert report["checks"]["redis"] == "error"


async def test_readiness_succeeds_when_every_check_passes(monkeypatch):
    monkeypatch.setattr(health, "check_database", lambda: None)
    monkeypatch.setattr(health, "check_redis", lambda: None)
    response = await request("/healthz/ready")
    assert response["status"] == 200
    assert json.loads(response["body"]) == {"status": "ok", "role": "asgi", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.parametrize("path", ["/", "/chat/", "/chat/lobby/", "/healthz/live/", "/healthz"])
async def test_other_paths_are_not_found_and_point_to_websockets(path):
    response = await request(path)
    assert response["status"] == 404
    assert response["headers"]["content-type"].startswith("text/plain")
    assert b"WebSockets under /ws/" in response["body"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_health_checks_answer_only_reads(method):
    # Daphne's tiny HTTP app knows only GET and HEAD on two paths; anything else is not found.
    response = await request("/healthz/live", method=method)
    assert response["status"] == 404
    assert response["headers"]["content-type"].startswith("text/plain")
    assert b"health checks under /healthz/" in response["body"]


async def test_head_gets_headers_without_a_body():
    response = await request("/healthz/live", method="HEAD")
    assert response["status"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert response["body"] == b""


async def test_head_on_an_unknown_path_has_no_body_either():
    response = await request("/nowhere", method="HEAD")
    assert response["status"] == 404
    assert response["body"] == b""


@pytest.mark.parametrize("path", ["/healthz/live", "/nowhere"])
async def test_responses_name_the_replica(path):
    response = await request(path)
    assert response["headers"]["x-replica"] == REPLICA


@pytest.mark.parametrize("path", ["/healthz/live", "/nowhere"])
async def test_the_replica_header_can_be_turned_off(settings, path):
    settings.CHATSCALE_SHOW_REPLICA = False
    response = await request(path)
    assert "x-replica" not in response["headers"]
    assert REPLICA.encode() not in response["body"]
