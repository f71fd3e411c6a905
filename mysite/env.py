"""Read typed settings from the environment, failing loudly on values that make no sense.

Every error names the variable, the value it got and what it accepts, so a person
fixing a deployment knows exactly what to change.
"""

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}

Environ = Mapping[str, str] | None
Default = TypeVar("Default")


def _raw(name: str, environ: Environ) -> str | None:
    value = (environ if environ is not None else os.environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


@overload
def get_str(name: str, default: str, environ: Environ = None) -> str: ...
@overload
def get_str(name: str, default: None = None, environ: Environ = None) -> str | None: ...
def get_str(name: str, default: str | None = None, environ: Environ = None) -> str | None:
    """Return the variable as a stripped string, or ``default`` when unset or blank."""
    value = _raw(name, environ)
    return default if value is None else value


def get_bool(name: str, default: Default, environ: Environ = None) -> bool | Default:
    """Return the variable as a boolean; accepts 1/0, true/false, yes/no, on/off."""
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use one of "
        f"{', '.join(sorted(TRUE_WORDS))} or {', '.join(sorted(FALSE_WORDS))}."
    )


def get_renamed_bool(name: str, old_name: str, default: bool, environ: Environ = None) -> bool:
    """Return a boolean that used to be called ``old_name``: either name works, and both must agree."""
    current = get_bool(name, None, environ)
    old = get_bool(old_name, None, environ)
    if current is not None and old is not None and current != old:
        raise ImproperlyConfigured(
            f"{name}={_raw(name, environ)!r} and {old_name}={_raw(old_name, environ)!r} disagree. "
            f"{old_name} is the old name of {name}: remove it and keep only {name}."
        )
    for value in (current, old):
        if value is not None:
            return value
    return default


def get_int(
    name: str, default: int, minimum: int | None = None, maximum: int | None = None, environ: Environ = None
) -> int:
    """Return the variable as an integer within [minimum, maximum]."""
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small; the minimum is {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is too large; the maximum is {maximum}.")
    return number


def get_list(name: str, default: Iterable[str] = (), environ: Environ = None) -> list[str]:
    """Return a comma-separated variable as a list of non-empty, stripped items."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_redis_url(name: str, value: str) -> str:
    """Check that ``value`` is a redis://, rediss:// or unix:// URL and return it unchanged."""
    redis_endpoint(name, value)
    return value


def redis_endpoint(name: str, value: str) -> tuple[str, int] | None:
    """Return the (host, port) that a Redis URL connects to, or None for a unix:// socket."""
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} is not a Redis URL; expected redis://host:port/db (or rediss:// for TLS)."
        )
    if parts.scheme == "unix":
        return None
    try:
        # Defaults as redis-py reads the URL: redis:///0 is localhost, port 6379.
        return parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} has an invalid port; use a number from 1 to 65535, "
            "and percent-encode special characters in the password (e.g. # as %23)."
        ) from None


def database_endpoint(database: Mapping[str, Any]) -> tuple[str, int] | None:
    """Return the (host, port) of a DATABASES entry that parse_database_url made, or None for a file."""
    if not database.get("HOST"):
        return None
    return database["HOST"], int(database["PORT"])


def parse_database_url(name: str, value: str, base_dir: str | Path) -> dict[str, Any]:
    """Turn ``sqlite:///path`` or ``postgres://user:pass@host:port/db`` into a DATABASES entry."""
    parts = urlsplit(value)
    if parts.scheme == "sqlite":
        # sqlite:///relative.db is relative to the project; sqlite:////abs/path.db is absolute.
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise ImproperlyConfigured(
                f"{name}={value!r} names no file; use sqlite:///db.sqlite3 or sqlite:////abs/path.db."
            )
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(Path(base_dir, path)),
            # Several processes share the file: wait for locks instead of failing, and let
            # readers proceed while one process writes.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    if parts.scheme in ("postgres", "postgresql"):
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not database:
            raise ImproperlyConfigured(
                f"{name}={_redact(value)!r} needs a host and a database name: "
                "postgres://user:password@host:5432/dbname."
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}={_redact(value)!r} has an invalid port; use a number from 1 to 65535, "
                "and percent-encode special characters in the password (e.g. # as %23)."
            ) from None
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        # Without it an unreachable host hangs a request (and the readiness probe) for minutes.
        options.setdefault("connect_timeout", "5")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname,
            "PORT": str(port),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"{name}={_redact(value)!r} has an unsupported scheme {parts.scheme!r}; "
        "use sqlite:///path or postgres://user:password@host:port/dbname."
    )


def _redact(url: str) -> str:
    """Hide the credentials of a URL so that error messages never print secrets.

    Works on the raw text rather than urlsplit's reading: a password pasted without
    percent-encoding (``#``, ``/``, ``?`` in it) confuses the parser but not this.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    # Keep the user name (it helps debugging); with no colon the whole part may be a token.
    return f"{scheme}://{user}:***@{location}" if colon else f"{scheme}://***@{location}"
