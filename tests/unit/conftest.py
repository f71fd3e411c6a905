"""Fixtures shared by the unit tests."""

import functools
from collections.abc import Callable

import pytest

from chat import consumers
from chat.ratelimit import TokenBucket


@pytest.fixture
def frozen_rate_limit(settings, monkeypatch) -> Callable[..., None]:
    """Set the chat rate limit for this test, with a clock that stands still.

    No token comes back however slowly the test runs, so what is refused is exact.
    """

    def freeze(burst: int, per_second: int = 1) -> None:
        settings.CHAT_RATE_LIMIT_BURST = burst
        settings.CHAT_RATE_LIMIT_PER_SECOND = per_second
        monkeypatch.setattr(consumers, "TokenBucket", functools.partial(TokenBucket, clock=lambda: 0.0))

    return freeze
