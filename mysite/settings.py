"""Django settings for chatscale, read from the environment (twelve-factor).

Every variable is listed in docs/settings.md. Production (DJANGO_DEBUG off, the default)
refuses to start without a real secret key and an explicit list of allowed hosts.
"""

import socket
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from mysite import env

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.get_bool("DJANGO_DEBUG", False)

# A fixed key is fine for a developer's laptop and nowhere else.
DEVELOPMENT_SECRET_KEY = "django-insecure-chatscale-development-only-never-use-in-production"  # noqa: S105
SECRET_KEY = env.get_str("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production needs a secret of at least 50 random "
            "characters, for example from: python3 -c 'import secrets; print(secrets.token_urlsafe(50))' "
            "(or set DJANGO_DEBUG=true for local development)."
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
elif not DEBUG and (
    SECRET_KEY.startswith("django-insecure")
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
    or "change-me" in SECRET_KEY.lower()
):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY looks like a placeholder or is too weak (it needs at least 50 "
        "characters, 5 distinct ones, and no 'django-insecure'/'change-me'). Generate one with: "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )

ALLOWED_HOSTS = env.get_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is not set. List the host names clients use to reach the site, "
        "comma-separated, for example: DJANGO_ALLOWED_HOSTS=chat.example.com."
    )
if not DEBUG and "*" in ALLOWED_HOSTS:
    # The WebSocket origin check compares browser origins with ALLOWED_HOSTS; '*' would
    # let any web site open sockets on behalf of a visitor.
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS contains '*', which also disables the WebSocket origin check. "
        "List the real host names instead."
    )
CSRF_TRUSTED_ORIGINS = env.get_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "chat.middleware.ResponseHeadersMiddleware",
    "chat.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"
ASGI_APPLICATION = "mysite.asgi.application"

DATABASES = {
    "default": env.parse_database_url("DATABASE_URL", env.get_str("DATABASE_URL", "sqlite:///db.sqlite3"), BASE_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.parse_redis_url("REDIS_URL", env.get_str("REDIS_URL", "redis://127.0.0.1:6379/0"))
# Every Redis key and channel of chatscale starts with this.
CHANNEL_LAYER_PREFIX = env.get_str("CHANNEL_LAYER_PREFIX", "chatscale")

# Daphne closes every socket after this long; the page reconnects and resumes from history.
DAPHNE_WEBSOCKET_TIMEOUT = env.get_int("DAPHNE_WEBSOCKET_TIMEOUT", 43200, minimum=60)
# The rest of Daphne's command line; deploy/runtime/run_daphne.py passes these on as flags.
DAPHNE_BIND = env.get_str("DAPHNE_BIND", "0.0.0.0")  # noqa: S104 (a container's address; nginx is the edge)
DAPHNE_PORT = env.get_int("DAPHNE_PORT", 8000, minimum=1, maximum=65535)
# Pings keep an idle socket's traffic inside nginx's 300 s proxy_read_timeout (nginx/server.conf).
DAPHNE_PING_INTERVAL = env.get_int("DAPHNE_PING_INTERVAL", 20, minimum=1, maximum=299)
DAPHNE_PING_TIMEOUT = env.get_int("DAPHNE_PING_TIMEOUT", 30, minimum=1)
DAPHNE_APPLICATION_CLOSE_TIMEOUT = env.get_int("DAPHNE_APPLICATION_CLOSE_TIMEOUT", 10, minimum=1)
# On SIGTERM, a replica closes its sockets for resume spread over this many seconds, then
# stops (deploy/runtime/run_daphne.py). Orchestrators must wait longer than this after
# SIGTERM: compose's stop_grace_period, Kubernetes' terminationGracePeriodSeconds.
DAPHNE_DRAIN_SECONDS = env.get_int("DAPHNE_DRAIN_SECONDS", 5, minimum=0, maximum=120)
# A socket whose client does not read is dropped once this much waits to be written to it
# (beyond what the kernel buffers); it resumes from history when it reconnects.
DAPHNE_MAX_SOCKET_BACKLOG_BYTES = env.get_int(
    "DAPHNE_MAX_SOCKET_BACKLOG_BYTES", 8 * 1024 * 1024, minimum=64 * 1024, maximum=1024 * 1024 * 1024
)

# Redis read timeout of the channel layer's connections. channels_redis's core layer waited
# with 5 s blocking pops that redis-py 8's 5 s default cut short (django/channels_redis#422);
# the pub/sub layer polls, but the floor stays so a slow Redis is not mistaken for a dead one.
CHANNEL_LAYER_SOCKET_TIMEOUT = env.get_int("CHANNEL_LAYER_SOCKET_TIMEOUT", 15, minimum=6)

# The pub/sub layer keeps each room's members in the memory of their own replica and
# subscribes the replica to the room's Redis channel, so a Redis that loses its data (a
# flush, a restart without persistence) leaves no room deaf: redis-py re-subscribes after
# reconnecting. It has no per-socket capacity that drops messages silently; the consumer
# bounds each socket's backlog itself. What a socket misses while it reconnects comes back
# from the room's history (chat/history.py).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                    "socket_connect_timeout": 5,
                    "socket_keepalive": True,
                    "health_check_interval": 30,
                    # After a Redis restart the pooled connections are dead: one more try, on
                    # a fresh connection, for a cut or refused connection only.
                    "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                    "retry_on_error": [RedisConnectionError],
                }
            ],
            "prefix": CHANNEL_LAYER_PREFIX,
        },
    }
}

# Chat behaviour.
CHAT_ROOM_NAME_MAX_LENGTH = 100
CHAT_MESSAGE_MAX_LENGTH = env.get_int("CHAT_MESSAGE_MAX_LENGTH", 2000, minimum=1, maximum=100_000)
# Token bucket per connection: a sustained rate and a burst allowance.
CHAT_RATE_LIMIT_PER_SECOND = env.get_int("CHAT_RATE_LIMIT_PER_SECOND", 10, minimum=1)
CHAT_RATE_LIMIT_BURST = env.get_int("CHAT_RATE_LIMIT_BURST", 30, minimum=1)
# Each room's history in Redis (chat/history.py): at most this many messages, forgotten
# after this many seconds without a new one. A client that was away longer, or missed more,
# is told that some messages are missing.
CHAT_HISTORY_MAX_MESSAGES = env.get_int("CHAT_HISTORY_MAX_MESSAGES", 500, minimum=1, maximum=100_000)
CHAT_HISTORY_IDLE_SECONDS = env.get_int("CHAT_HISTORY_IDLE_SECONDS", 86400, minimum=60)
# How many of the latest messages a newly joined page shows.
CHAT_HISTORY_ON_JOIN = env.get_int("CHAT_HISTORY_ON_JOIN", 50, minimum=0, maximum=1000)
if CHAT_HISTORY_ON_JOIN > CHAT_HISTORY_MAX_MESSAGES:
    raise ImproperlyConfigured(
        f"CHAT_HISTORY_ON_JOIN ({CHAT_HISTORY_ON_JOIN}) is more than the history keeps "
        f"(CHAT_HISTORY_MAX_MESSAGES={CHAT_HISTORY_MAX_MESSAGES}); lower it or keep more history."
    )
# Where the history lives: a factory returning a chat.history.RoomHistory-like store for the
# running event loop. Unit tests swap in an in-memory one.
CHAT_HISTORY_STORE = "chat.history.redis_history"
# How often, in seconds, each Daphne replica checks that Redis still has its state; when it
# was lost (unreachable, restarted, flushed) the replica closes its sockets so that they
# resume from history (chat/redis_watch.py). 0 turns the check off (unit tests).
CHAT_REDIS_WATCH_INTERVAL = env.get_int("CHAT_REDIS_WATCH_INTERVAL", 1, minimum=1, maximum=60)

# The replica's name, shown in X-Replica headers, in chat frames and in Daphne's Server
# header (chat/replica.py says where); off hides the topology. CHATSCALE_REPLICA_HEADER is
# the setting's old name, still read: it also hid names in frames, not only in headers.
CHATSCALE_REPLICA_NAME = env.get_str("CHATSCALE_REPLICA_NAME", socket.gethostname())
CHATSCALE_SHOW_REPLICA = env.get_renamed_bool("CHATSCALE_SHOW_REPLICA", "CHATSCALE_REPLICA_HEADER", True)

HEALTH_CHECK_TIMEOUT = env.get_int("HEALTH_CHECK_TIMEOUT", 2, minimum=1, maximum=30)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.get_str("STATIC_ROOT", str(BASE_DIR / "public" / "static")))

# nginx sets X-Forwarded-Proto itself: its own scheme, or what a trusted proxy in front of it
# says (Kubernetes: the Ingress that ends TLS; nginx/http.conf). It never passes a client's
# value through, so trusting it here is safe behind nginx, and the redirect and HSTS below
# work where TLS ends at nginx or at the Ingress.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.get_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.get_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# Probes from the kubelet and Docker speak plain HTTP to the container. HealthCheckMiddleware
# answers them before SecurityMiddleware runs; this keeps them exempt should that order change.
SECURE_REDIRECT_EXEMPT = [r"^healthz/"]
SECURE_HSTS_SECONDS = env.get_int("DJANGO_SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.get_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env.get_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# `manage.py check --deploy` warns about each TLS knob above while it is off. They are off by
# default because nothing says TLS is in front: local clusters and compose serve plain HTTP,
# and a browser that once saw HSTS refuses plain HTTP to the host for as long as it says. Each
# warning is silenced only while its own knob is off, so turning a knob on brings its check back.
SILENCED_SYSTEM_CHECKS = []
if not SESSION_COOKIE_SECURE:
    SILENCED_SYSTEM_CHECKS += ["security.W012", "security.W016"]  # cookies not marked secure
if not SECURE_SSL_REDIRECT:
    SILENCED_SYSTEM_CHECKS += ["security.W008"]  # no redirect to https
if not SECURE_HSTS_SECONDS:
    SILENCED_SYSTEM_CHECKS += ["security.W004"]  # no HSTS
else:
    # With HSTS on, subdomains and preloading are further commitments (every subdomain on TLS;
    # a place in browsers' built-in lists that takes months to leave), made only on purpose.
    if not SECURE_HSTS_INCLUDE_SUBDOMAINS:
        SILENCED_SYSTEM_CHECKS += ["security.W005"]
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS += ["security.W021"]

LOG_LEVEL = env.get_str("DJANGO_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"DJANGO_LOG_LEVEL={LOG_LEVEL!r} is not a log level; use DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # %% keeps a "%" in a replica name from being read as a format field.
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s ["
            + CHATSCALE_REPLICA_NAME.replace("%", "%%")
            + "] %(message)s"
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}},
}
