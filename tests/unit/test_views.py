"""The pages and health endpoints that Gunicorn serves."""

import json
import re

import pytest
from django.conf import settings as django_settings
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory

from chat import health

REPLICA = "unit-test-replica"
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"
ROOM_NAME_SCRIPT = re.compile(r'<script id="room-name" type="application/json">(.*?)</script>', re.DOTALL)


def room_name_on_page(response):
    """The room name the page's script reads, decoded from its json_script element."""
    found = ROOM_NAME_SCRIPT.findall(response.content.decode())
    assert len(found) == 1, "the room page must carry exactly one room-name element"
    return json.loads(found[0])


@pytest.fixture
def healthy(monkeypatch):
    """Readiness checks that pass without a database or Redis."""
    monkeypatch.setattr(health, "check_database", lambda: None)
    monkeypatch.setattr(health, "check_redis", lambda: None)


def test_the_picker_has_its_form(client):
    response = client.get("/chat/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="room-name-input"' in html
    assert 'id="room-name-submit"' in html
    assert 'data-max-length="100"' in html
    assert 'id="room-name-error" class="error" role="alert" hidden' in html


def test_a_room_page_has_the_log_and_the_message_form(client):
    response = client.get("/chat/lobby/")
    assert response.status_code == 200
    html = response.content.decode()
    for element in ("chat-log", "chat-message-input", "chat-message-submit"):
        assert f'id="{element}"' in html
    assert room_name_on_page(response) == "lobby"


def test_the_message_input_enforces_the_configured_length(client, settings):
    settings.CHAT_MESSAGE_MAX_LENGTH = 123
    html = client.get("/chat/lobby/").content.decode()
    assert 'maxlength="123"' in html


def test_a_hostile_room_name_is_never_markup(client):
    name = "<script>alert(1)</script>"
    response = client.get("/chat/%3Cscript%3Ealert(1)%3C%2Fscript%3E/")
    assert response.status_code == 200
    html = response.content.decode()
    assert name not in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert room_name_on_page(response) == name


def test_a_room_name_that_closes_the_json_script_stays_inside_it(client):
    name = '</script><img src=x onerror=alert(1)>"'
    response = client.get("/chat/%3C%2Fscript%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%22/")
    assert response.status_code == 200
    assert "<img" not in response.content.decode()
    assert room_name_on_page(response) == name


def test_a_unicode_room_with_an_encoded_slash_opens(client):
    response = client.get("/chat/caf%C3%A9%20a%2Fb/")
    assert response.status_code == 200
    assert room_name_on_page(response) == "café a/b"


def test_the_page_shows_the_normalized_room_name(client):
    response = client.get("/chat/%20Cafe%CC%81%20/")
    assert response.status_code == 200
    assert room_name_on_page(response) == "Caf\u00e9"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/chat/" + "x" * 101 + "/", "101 characters long; the limit is 100"),
        ("/chat/../", "&#x27;..&#x27; cannot be room names"),
        ("/chat/a%07b/", "U+0007"),
        ("/chat/%20%20/", "cannot be empty"),
    ],
)
def test_an_invalid_room_gives_the_picker_back_with_the_reason(client, path, reason):
    response = client.get(path)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="room-name-input"' in html
    assert 'id="chat-log"' not in html
    assert reason in html
    assert 'role="alert" hidden' not in html, "the reason must be visible"


def test_an_overlong_room_name_is_offered_back_for_editing(client):
    html = client.get("/chat/" + "x" * 101 + "/").content.decode()
    assert 'value="' + "x" * 101 + '"' in html


@pytest.mark.parametrize("path", ["/chat/", "/chat/lobby/", "/chat/" + "x" * 101 + "/"])
def test_pages_carry_a_content_security_policy(client, path):
    policy = client.get(path).headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_pages_cannot_be_framed_or_sniffed(client):
    response = client.get("/chat/lobby/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/chat/", "/chat/lobby/", "/healthz/live", "/chat/../"])
def test_responses_name_the_replica(client, path):
    assert client.get(path).headers["X-Replica"] == REPLICA


@pytest.mark.parametrize("path", ["/chat/", "/chat/lobby/", "/healthz/live"])
def test_the_replica_header_can_be_turned_off(client, settings, path):
    settings.CHATSCALE_SHOW_REPLICA = False
    response = client.get(path)
    assert response.status_code == 200
    assert "X-Replica" not in response.headers
    assert REPLICA not in response.content.decode()


@pytest.mark.parametrize("path", ["/chat/", "/chat/lobby/"])
def test_pages_only_answer_safe_methods(client, path):
    assert client.post(path).status_code == 405
    assert client.head(path).status_code == 200


def test_the_site_root_leads_to_the_picker(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/chat/"


def test_liveness_answers_without_checking_anything(client, monkeypatch):
    def broken():
        raise ConnectionError("down")

    monkeypatch.setattr(health, "check_database", broken)
    monkeypatch.setattr(health, "check_redis", broken)
    response = client.get("/healthz/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "role": "wsgi"}
    assert "no-cache" in response.headers["Cache-Control"]


@pytest.mark.django_db
def test_readiness_fails_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = CLOSED_REDIS_URL
    settings.HEALTH_CHECK_TIMEOUT = 1
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unavailable"
    assert report["role"] == "wsgi"
    assert report["checks"]["database"] == "ok"
    assert report["checks"]["redis"] == "error"
    assert "no-cache" in response.headers["Cache-Control"]


def test_readiness_succeeds_when_every_check_passes(client, healthy):
    response = client.get("/healthz/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "role": "wsgi", "checks": {"database": "ok", "redis": "ok"}}


def test_readiness_fails_when_the_database_is_unreachable(client, monkeypatch):
    def database_down():
        raise ConnectionError("database is down")

    monkeypatch.setattr(health, "check_database", database_down)
    monkeypatch.setattr(health, "check_redis", lambda: None)
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "error", "redis": "ok"}
    # Details stay in the log: the endpoint is public.
    assert "database is down" not in response.content.decode()


def test_health_endpoints_only_answer_safe_methods(client):
    assert client.post("/healthz/live").status_code == 405
    assert client.post("/healthz/ready").status_code == 405


@pytest.mark.parametrize("path", ["/healthz/live", "/healthz/ready"])
def test_probes_are_answered_whatever_the_host(client, healthy, path):
    # The kubelet and Docker address the container by IP, which ALLOWED_HOSTS refuses.
    response = client.get(path, HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert client.get("/chat/", HTTP_HOST="10.1.2.3:8000").status_code == 400


@pytest.mark.parametrize("path", ["/healthz/live", "/healthz/ready"])
def test_probes_over_plain_http_are_answered_even_with_the_https_redirect_on(client, settings, healthy, path):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get(path, HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_https_redirect_sends_pages_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/chat/lobby/")
    assert response.status_code == 301
    assert response.headers["Location"] == "https://testserver/chat/lobby/"
    assert client.get("/chat/lobby/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_probes_stay_exempt_from_the_https_redirect_whatever_the_middleware_order(settings):
    # HealthCheckMiddleware answers before SecurityMiddleware today; the exemption holds without it.
    settings.SECURE_SSL_REDIRECT = True
    security = SecurityMiddleware(lambda request: None)
    assert security.process_request(RequestFactory().get("/healthz/ready")) is None
    assert security.process_request(RequestFactory().get("/chat/")).status_code == 301


def test_health_checks_are_answered_before_the_security_middleware():
    middleware = django_settings.MIDDLEWARE
    assert middleware.index("chat.middleware.HealthCheckMiddleware") < middleware.index(
        "django.middleware.security.SecurityMiddleware"
    )


def test_hsts_is_sent_on_https_responses_when_turned_on(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    secure = client.get("/chat/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "Strict-Transport-Security" not in client.get("/chat/").headers, "browsers ignore HSTS over http"
