"""The shared limiter's patience: a short wait is waited out, a long one is handed back."""

from __future__ import annotations

import time

import pytest
import redis

from sync.clients import ratelimit
from sync.clients.ratelimit import RateLimiter

TWO_A_HALF_SECOND = [(2, 0.5)]


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The limiter's sleeps, recorded (and really slept, so the window frees)."""
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(ratelimit.time, "sleep", sleep)
    return slept


def test_without_patience_a_full_window_hands_back_the_wait(redis_url, sleeps):
    limiter = RateLimiter(redis.Redis.from_url(redis_url))
    assert limiter.acquire("test:impatient", TWO_A_HALF_SECOND) == 0
    assert limiter.acquire("test:impatient", TWO_A_HALF_SECOND) == 0
    wait = limiter.acquire("test:impatient", TWO_A_HALF_SECOND)
    assert 0 < wait <= 0.5 and sleeps == []


def test_a_wait_within_max_wait_is_waited_out_and_the_call_admitted(redis_url, sleeps):
    limiter = RateLimiter(redis.Redis.from_url(redis_url), max_wait=1.0)
    results = [limiter.acquire("test:patient", TWO_A_HALF_SECOND) for _ in range(3)]
    assert results == [0, 0, 0]
    assert len(sleeps) >= 1 and 0 < sum(sleeps) <= 1.0  # the third waited for the window to free


def test_a_wait_longer_than_max_wait_is_handed_back_without_sleeping(redis_url, sleeps):
    limiter = RateLimiter(redis.Redis.from_url(redis_url), max_wait=0.2)
    minute = [(1, 60.0)]
    assert limiter.acquire("test:long", minute) == 0
    assert limiter.acquire("test:long", minute) > 50
    assert sleeps == []
