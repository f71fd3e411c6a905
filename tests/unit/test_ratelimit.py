"""The token bucket that limits each connection's frames."""

from chat.ratelimit import TokenBucket


def test_token_bucket_allows_a_burst_then_refuses():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    for _ in range(3):
        bucket.take()
    now[0] = 0.4
    assert not bucket.take(), "0.4 s at 2 per second is less than one token"
    now[0] = 0.5
    assert bucket.take()
    assert not bucket.take()


def test_token_bucket_never_holds_more_than_its_burst():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    now[0] = 1000.0
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_token_bucket_counts_refused_attempts_as_nothing():
    now = [0.0]
    bucket = TokenBucket(rate=1, burst=1, clock=lambda: now[0])
    bucket.take()
    for step in range(1, 10):
        now[0] = step * 0.1
        assert not bucket.take()
    now[0] = 1.0
    assert bucket.take(), "refused attempts must not push the next token further away"
