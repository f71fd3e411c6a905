"""Settings read from the environment: production refuses to start on unsafe or nonsense values.

The settings module runs its checks at import, so each case imports it in a fresh Python
process with exactly the environment under test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mysite import env

PROJECT = Path(__file__).resolve().parents[2]
STRONG_SECRET_KEY = "q8ZrT1vN4bXk7LmP0sWd3FhJ6gYc9AeRu2oIy5tEw8NzKx1VbM4nQ7pL"
PRODUCTION = {"DJANGO_SECRET_KEY": STRONG_SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "chat.example.com"}


def import_settings(variables, show="None"):
    """Import mysite.settings with only ``variables`` set; return (exit code, output or error).

    ``show`` is a Python expression over the module ``s``, printed as JSON on success.
    """
    code = f"import json, mysite.settings as s; print(json.dumps({show}))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode == 0:
        return 0, json.loads(result.stdout)
    return result.returncode, result.stderr


def refusal(variables):
    """The error message of a settings import that must fail."""
    returncode, stderr = import_settings(variables)
    assert returncode != 0, f"settings accepted {variables}"
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), stderr
    return stderr


def test_a_valid_production_environment_starts():
    returncode, shown = import_settings(PRODUCTION, show="[s.DEBUG, s.ALLOWED_HOSTS, s.SECRET_KEY]")
    assert returncode == 0, shown
    assert shown == [False, ["chat.example.com"], STRONG_SECRET_KEY]


TLS_KNOBS_ON = {
    "DJANGO_SECURE_COOKIES": "true",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
}


def check_deploy(variables):
    """Run `manage.py check --deploy --fail-level WARNING` with only ``variables``; return (exit code, output)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_deployment_checks_pass_in_production():
    returncode, output = check_deploy(PRODUCTION)
    assert returncode == 0, output
    assert "System check identified no issues (4 silenced)." in output
    assert "WARNING" not in output


def test_the_deployment_checks_pass_with_every_tls_knob_on_and_nothing_silenced():
    returncode, output = check_deploy({**PRODUCTION, **TLS_KNOBS_ON})
    assert returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output


@pytest.mark.parametrize(
    ("knobs", "silenced"),
    [
        ({}, ["security.W004", "security.W008", "security.W012", "security.W016"]),
        ({"DJANGO_SECURE_COOKIES": "true"}, ["security.W004", "security.W008"]),
        ({"DJANGO_SECURE_SSL_REDIRECT": "true"}, ["security.W004", "security.W012", "security.W016"]),
        (
            {"DJANGO_SECURE_HSTS_SECONDS": "3600"},
            ["security.W005", "security.W008", "security.W012", "security.W016", "security.W021"],
        ),
        (
            {"DJANGO_SECURE_HSTS_SECONDS": "3600", "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true"},
            ["security.W008", "security.W012", "security.W016", "security.W021"],
        ),
        (TLS_KNOBS_ON, []),
    ],
    ids=["defaults", "secure cookies", "ssl redirect", "hsts", "hsts with subdomains", "all on"],
)
def test_a_deployment_warning_is_silenced_only_while_its_knob_is_off(knobs, silenced):
    returncode, shown = import_settings({**PRODUCTION, **knobs}, show="sorted(s.SILENCED_SYSTEM_CHECKS)")
    assert returncode == 0, shown
    assert shown == silenced


def test_tls_knobs_reach_djangos_settings():
    returncode, shown = import_settings(
        {**PRODUCTION, **TLS_KNOBS_ON},
        show="[s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD]",
    )
    assert returncode == 0, shown
    assert shown == [True, True, True, 31536000, True, True]


def test_production_needs_a_secret_key():
    message = refusal({"DJANGO_ALLOWED_HOSTS": "chat.example.com"})
    assert "DJANGO_SECRET_KEY is not set" in message
    assert "secrets.token_urlsafe" in message


@pytest.mark.parametrize(
    "secret_key",
    [
        "django-insecure-" + STRONG_SECRET_KEY,
        "short-but-random-Zx81",
        "change-me-" + STRONG_SECRET_KEY,
        STRONG_SECRET_KEY + "-CHANGE-ME",
        "ab" * 40,
    ],
    ids=["django-insecure", "short", "change-me", "change-me-uppercase", "few-distinct-characters"],
)
def test_production_refuses_a_weak_secret_key(secret_key):
    message = refusal({**PRODUCTION, "DJANGO_SECRET_KEY": secret_key})
    assert "DJANGO_SECRET_KEY looks like a placeholder or is too weak" in message
    assert secret_key not in message


@pytest.mark.parametrize("hosts", [None, "", " , "])
def test_production_needs_allowed_hosts(hosts):
    variables = {"DJANGO_SECRET_KEY": STRONG_SECRET_KEY}
    if hosts is not None:
        variables["DJANGO_ALLOWED_HOSTS"] = hosts
    assert "DJANGO_ALLOWED_HOSTS is not set" in refusal(variables)


@pytest.mark.parametrize("hosts", ["*", "chat.example.com, *"])
def test_production_refuses_any_host(hosts):
    message = refusal({**PRODUCTION, "DJANGO_ALLOWED_HOSTS": hosts})
    assert "DJANGO_ALLOWED_HOSTS contains '*'" in message


def test_development_needs_no_secret_and_allows_localhost():
    returncode, shown = import_settings({"DJANGO_DEBUG": "true"}, show="[s.DEBUG, s.SECRET_KEY, s.ALLOWED_HOSTS]")
    assert returncode == 0, shown
    debug, secret_key, allowed_hosts = shown
    assert debug is True
    assert secret_key.startswith("django-insecure")
    assert allowed_hosts == ["localhost", "127.0.0.1", "[::1]"]


def test_an_unclear_debug_value_is_refused_with_the_accepted_words():
    message = refusal({**PRODUCTION, "DJANGO_DEBUG": "maybe"})
    assert "DJANGO_DEBUG='maybe' is not a boolean" in message
    for word in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        assert word in message


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("CHAT_MESSAGE_MAX_LENGTH", "abc", "CHAT_MESSAGE_MAX_LENGTH='abc' is not a whole number"),
        ("CHAT_MESSAGE_MAX_LENGTH", "0", "CHAT_MESSAGE_MAX_LENGTH=0 is too small; the minimum is 1"),
        ("CHAT_MESSAGE_MAX_LENGTH", "100001", "CHAT_MESSAGE_MAX_LENGTH=100001 is too large; the maximum is 100000"),
        ("CHAT_RATE_LIMIT_BURST", "1.5", "CHAT_RATE_LIMIT_BURST='1.5' is not a whole number"),
        ("HEALTH_CHECK_TIMEOUT", "0", "HEALTH_CHECK_TIMEOUT=0 is too small"),
        ("CHANNEL_LAYER_SOCKET_TIMEOUT", "5", "CHANNEL_LAYER_SOCKET_TIMEOUT=5 is too small; the minimum is 6"),
        ("DJANGO_LOG_LEVEL", "verbose", "DJANGO_LOG_LEVEL='VERBOSE' is not a log level"),
        ("DJANGO_SECURE_HSTS_SECONDS", "-1", "DJANGO_SECURE_HSTS_SECONDS=-1 is too small; the minimum is 0"),
        ("DJANGO_SECURE_SSL_REDIRECT", "always", "DJANGO_SECURE_SSL_REDIRECT='always' is not a boolean"),
        ("CHATSCALE_SHOW_REPLICA", "sometimes", "CHATSCALE_SHOW_REPLICA='sometimes' is not a boolean"),
        ("CHATSCALE_REPLICA_HEADER", "sometimes", "CHATSCALE_REPLICA_HEADER='sometimes' is not a boolean"),
        ("DAPHNE_PORT", "0", "DAPHNE_PORT=0 is too small; the minimum is 1"),
        ("DAPHNE_PING_TIMEOUT", "soon", "DAPHNE_PING_TIMEOUT='soon' is not a whole number"),
        ("DAPHNE_APPLICATION_CLOSE_TIMEOUT", "0", "DAPHNE_APPLICATION_CLOSE_TIMEOUT=0 is too small"),
    ],
)
def test_nonsense_values_are_refused_naming_the_variable(name, value, complaint):
    assert complaint in refusal({**PRODUCTION, name: value})


@pytest.mark.parametrize(
    ("variables", "shown"),
    [
        ({}, True),
        ({"CHATSCALE_SHOW_REPLICA": "false"}, False),
        ({"CHATSCALE_REPLICA_HEADER": "false"}, False),
        ({"CHATSCALE_REPLICA_HEADER": "true"}, True),
        ({"CHATSCALE_SHOW_REPLICA": "off", "CHATSCALE_REPLICA_HEADER": "0"}, False),
        ({"CHATSCALE_SHOW_REPLICA": "yes", "CHATSCALE_REPLICA_HEADER": ""}, True),
    ],
    ids=["default", "new name", "old name off", "old name on", "both agree", "old name blank"],
)
def test_show_replica_also_answers_to_its_old_name(variables, shown):
    returncode, value = import_settings({**PRODUCTION, **variables}, show="s.CHATSCALE_SHOW_REPLICA")
    assert returncode == 0, value
    assert value is shown


def test_show_replica_and_its_old_name_must_not_disagree():
    message = refusal({**PRODUCTION, "CHATSCALE_SHOW_REPLICA": "true", "CHATSCALE_REPLICA_HEADER": "false"})
    assert "CHATSCALE_SHOW_REPLICA='true' and CHATSCALE_REPLICA_HEADER='false' disagree" in message
    assert "keep only CHATSCALE_SHOW_REPLICA" in message


def test_the_history_shown_on_join_must_fit_in_the_history_kept():
    message = refusal({**PRODUCTION, "CHAT_HISTORY_MAX_MESSAGES": "20", "CHAT_HISTORY_ON_JOIN": "50"})
    assert "CHAT_HISTORY_ON_JOIN (50) is more than the history keeps" in message


def test_the_history_settings_are_read():
    returncode, shown = import_settings(
        {
            **PRODUCTION,
            "CHAT_HISTORY_MAX_MESSAGES": "200",
            "CHAT_HISTORY_IDLE_SECONDS": "3600",
            "CHAT_HISTORY_ON_JOIN": "20",
        },
        show="[s.CHAT_HISTORY_MAX_MESSAGES, s.CHAT_HISTORY_IDLE_SECONDS, s.CHAT_HISTORY_ON_JOIN]",
    )
    assert returncode == 0, shown
    assert shown == [200, 3600, 20]


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("mysql://chat:hunter2-secret@db:3306/chat", "hunter2-secret"),
        ("mysql://chat:p%40ss-secret@db/chat", "p%40ss-secret"),
        ("postgres://chat:hunter2-secret@db:5432/", "hunter2-secret"),
    ],
)
def test_a_bad_database_url_is_refused_without_showing_its_password(url, password):
    message = refusal({**PRODUCTION, "DATABASE_URL": url})
    assert "DATABASE_URL=" in message
    assert password not in message
    assert ":***@" in message


@pytest.mark.parametrize(
    "url",
    ["postgres://chat:hunter2#secret@db/chat", "mysql://chat:hunter2/secret@db/chat", "mysql://chat:hunter2?secret@db"],
)
def test_a_password_pasted_without_percent_encoding_is_not_shown(url):
    # Generated passwords often contain '#', '/' or '?'; pasted raw, they still must not be printed.
    message = refusal({**PRODUCTION, "DATABASE_URL": url})
    assert "DATABASE_URL=" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("port", ["notaport", "99999"])
def test_a_database_url_with_a_bad_port_is_refused_naming_the_variable(port):
    message = refusal({**PRODUCTION, "DATABASE_URL": f"postgres://chat:hunter2-secret@db:{port}/chat"})
    assert "DATABASE_URL=" in message
    assert "hunter2-secret" not in message


def test_a_postgres_url_becomes_a_database_setting():
    returncode, database = import_settings(
        {**PRODUCTION, "DATABASE_URL": "postgres://u:p%40ss@db:5433/chat?sslmode=require"},
        show="s.DATABASES['default']",
    )
    assert returncode == 0, database
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["NAME"] == "chat"
    assert database["USER"] == "u"
    assert database["PASSWORD"] == "p@ss"
    assert database["HOST"] == "db"
    assert database["PORT"] == "5433"
    assert database["OPTIONS"] == {"sslmode": "require", "connect_timeout": "5"}


@pytest.mark.parametrize("url", ["http://x", "redis-host:6379", "reddis://127.0.0.1:6379/0"])
def test_a_url_that_is_not_redis_is_refused(url):
    message = refusal({**PRODUCTION, "REDIS_URL": url})
    assert f"REDIS_URL={url!r} is not a Redis URL" in message


def test_a_bad_redis_url_is_refused_without_showing_its_password():
    # Redis URLs carry the password (redis://:password@host); a typo in the scheme must not print it.
    message = refusal({**PRODUCTION, "REDIS_URL": "reddis://:hunter2-secret@redis:6379/0"})
    assert "REDIS_URL=" in message
    assert "hunter2-secret" not in message


@pytest.mark.parametrize("port", ["notaport", "99999"])
def test_a_redis_url_with_a_bad_port_is_refused_without_showing_its_password(port):
    message = refusal({**PRODUCTION, "REDIS_URL": f"redis://:hunter2-secret@redis:{port}/0"})
    assert f"REDIS_URL='redis://:***@redis:{port}/0' has an invalid port" in message
    assert "hunter2-secret" not in message


@pytest.mark.parametrize(
    "url", ["redis://redis:6379/0", "rediss://:secret@redis.example:6380/1", "unix:///run/redis.sock"]
)
def test_redis_urls_are_accepted(url):
    returncode, shown = import_settings(
        {**PRODUCTION, "REDIS_URL": url}, show="[h['address'] for h in s.CHANNEL_LAYERS['default']['CONFIG']['hosts']]"
    )
    assert returncode == 0, shown
    assert shown == [url]


def test_the_channel_layer_is_the_pub_sub_layer_with_a_patient_read_timeout_and_one_retry():
    show = (
        "[s.CHANNEL_LAYERS['default']['BACKEND'], "
        "[(h['socket_timeout'], h['retry'].get_retries()) for h in s.CHANNEL_LAYERS['default']['CONFIG']['hosts']]]"
    )
    returncode, shown = import_settings(PRODUCTION, show=show)
    assert returncode == 0, shown
    backend, hosts = shown
    # Memberships live in each replica, so a Redis that loses its data leaves no room deaf.
    assert backend == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert hosts and all(timeout > 5 and retries == 1 for timeout, retries in hosts)


@pytest.mark.parametrize("word", ["1", "true", "TRUE", " yes ", "On"])
def test_get_bool_reads_true_words(word):
    assert env.get_bool("FLAG", False, environ={"FLAG": word}) is True


@pytest.mark.parametrize("word", ["0", "false", "False", " no ", "OFF"])
def test_get_bool_reads_false_words(word):
    assert env.get_bool("FLAG", True, environ={"FLAG": word}) is False


@pytest.mark.parametrize("environ", [{}, {"FLAG": ""}, {"FLAG": "   "}])
def test_get_bool_falls_back_to_the_default_when_unset_or_blank(environ):
    assert env.get_bool("FLAG", True, environ=environ) is True
    assert env.get_bool("FLAG", False, environ=environ) is False


@pytest.mark.parametrize("word", ["maybe", "2", "enabled", "truee"])
def test_get_bool_refuses_other_words(word):
    with pytest.raises(ImproperlyConfigured, match=f"FLAG='{word}' is not a boolean"):
        env.get_bool("FLAG", False, environ={"FLAG": word})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, True),
        ({"NEW": "no"}, False),
        ({"OLD": "no"}, False),
        ({"NEW": "no", "OLD": "off"}, False),
        ({"NEW": " ", "OLD": "0"}, False),
    ],
)
def test_get_renamed_bool_reads_either_name(environ, expected):
    assert env.get_renamed_bool("NEW", "OLD", True, environ=environ) is expected


def test_get_renamed_bool_refuses_names_that_disagree():
    with pytest.raises(ImproperlyConfigured, match="NEW='on' and OLD='off' disagree. OLD is the old name of NEW"):
        env.get_renamed_bool("NEW", "OLD", True, environ={"NEW": "on", "OLD": "off"})


def test_get_renamed_bool_names_the_old_variable_when_its_value_is_nonsense():
    with pytest.raises(ImproperlyConfigured, match="OLD='maybe' is not a boolean"):
        env.get_renamed_bool("NEW", "OLD", True, environ={"OLD": "maybe"})


def test_get_int_reads_whole_numbers():
    assert env.get_int("COUNT", 5, environ={"COUNT": " 42 "}) == 42
    assert env.get_int("COUNT", 5, environ={"COUNT": "-3"}) == -3
    assert env.get_int("COUNT", 5, environ={}) == 5
    assert env.get_int("COUNT", 5, environ={"COUNT": ""}) == 5


@pytest.mark.parametrize("value", ["abc", "1.5", "1e3", "ten"])
def test_get_int_refuses_what_is_not_a_whole_number(value):
    with pytest.raises(ImproperlyConfigured, match="is not a whole number"):
        env.get_int("COUNT", 5, environ={"COUNT": value})


def test_get_int_enforces_its_bounds_inclusively():
    assert env.get_int("COUNT", 5, minimum=1, maximum=10, environ={"COUNT": "1"}) == 1
    assert env.get_int("COUNT", 5, minimum=1, maximum=10, environ={"COUNT": "10"}) == 10
    with pytest.raises(ImproperlyConfigured, match="COUNT=0 is too small; the minimum is 1"):
        env.get_int("COUNT", 5, minimum=1, maximum=10, environ={"COUNT": "0"})
    with pytest.raises(ImproperlyConfigured, match="COUNT=11 is too large; the maximum is 10"):
        env.get_int("COUNT", 5, minimum=1, maximum=10, environ={"COUNT": "11"})


def test_get_list_splits_on_commas_and_drops_blanks():
    assert env.get_list("HOSTS", environ={"HOSTS": " a.example, b.example,,c.example , "}) == [
        "a.example",
        "b.example",
        "c.example",
    ]


def test_get_list_returns_a_fresh_copy_of_the_default():
    default = ("localhost",)
    first = env.get_list("HOSTS", default, environ={})
    first.append("changed")
    assert env.get_list("HOSTS", default, environ={}) == ["localhost"]
    assert env.get_list("HOSTS", environ={"HOSTS": " , "}) == []


def test_get_str_strips_and_treats_blank_as_unset():
    assert env.get_str("NAME", "fallback", environ={"NAME": "  value  "}) == "value"
    assert env.get_str("NAME", "fallback", environ={"NAME": "   "}) == "fallback"
    assert env.get_str("NAME", environ={}) is None


def test_env_functions_read_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("CHATSCALE_TEST_FLAG", "yes")
    assert env.get_bool("CHATSCALE_TEST_FLAG", False) is True


def test_a_relative_sqlite_url_lives_in_the_project(tmp_path):
    database = env.parse_database_url("DATABASE_URL", "sqlite:///db.sqlite3", tmp_path)
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(tmp_path / "db.sqlite3")


def test_an_absolute_sqlite_url_is_used_as_is(tmp_path):
    database = env.parse_database_url("DATABASE_URL", "sqlite:////var/lib/chat/db.sqlite3", tmp_path)
    assert database["NAME"] == "/var/lib/chat/db.sqlite3"


def test_a_sqlite_url_without_a_file_is_refused(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="names no file"):
        env.parse_database_url("DATABASE_URL", "sqlite://", tmp_path)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_postgres_url_defaults_its_port(tmp_path, scheme):
    database = env.parse_database_url("DATABASE_URL", f"{scheme}://chat@db/chat", tmp_path)
    assert database["PORT"] == "5432"
    assert database["USER"] == "chat"
    assert database["PASSWORD"] == ""


def test_a_postgres_url_needs_a_host(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="needs a host and a database name") as caught:
        env.parse_database_url("DATABASE_URL", "postgres://chat:hunter2-secret@/chat", tmp_path)
    assert "hunter2-secret" not in str(caught.value)
