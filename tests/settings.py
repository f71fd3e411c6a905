"""Settings for the unit tests: the real settings module, fed a test environment.

Only what needs Redis differs: unit tests use the in-memory channel layer and history, and
no Redis watch, so that they need nothing running. The integration tests exercise the real
Redis layer, history and watch.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "unit-tests-only-" + "x1y2z3" * 10)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("CHATSCALE_REPLICA_NAME", "unit-test-replica")

from mysite.settings import *  # noqa: E402,F403

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CHAT_HISTORY_STORE = "tests.support.fakes.InMemoryHistory"
CHAT_REDIS_WATCH_INTERVAL = 0
DATABASES["default"]["NAME"] = ":memory:"  # noqa: F405
