"""A rate limiter shared by every worker through Redis, so normal operation never sees a 429.

Each limit is a sliding window kept as a sorted set of request times; one Lua
script checks every window of a key and, only if all have room, records the
request in all of them — atomically, with Redis's clock. A caller that gets a
wait back longer than the limiter's `max_wait` does not sleep: it raises RateLimited and its job is
re-enqueued.
Requests are also counted per account for the health panel and benchmarks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis

# KEYS: one sorted set per window. ARGV: now (ms), then limit and window (ms) per key, then a member id.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[#ARGV] .. ':' .. i)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""

HUBSPOT_LIMITS = {"api": [(110, 10.0)], "search": [(5, 1.0)]}  # per portal (NOTES §2)
QBO_LIMITS = {"api": [(500, 60.0), (10, 1.0)], "batch": [(500, 60.0), (10, 1.0), (40, 60.0)]}  # per realm and app
QBO_CONCURRENCY = 10


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        prefix: str = "ledgersync:rate",
        max_wait: float = 0.0,
        while_waiting: Callable[[], bool] | None = None,
    ) -> None:
        """`max_wait`: how long a caller may be held for its turn before RateLimited is raised instead.
        0 (the default) never holds anyone. A job uses about a second (a 10-a-second window frees in
        under one: cheaper than re-queueing the job and planning its page again); the CLI, which runs
        to the end anyway, waits out even a minute window. `while_waiting` is called before each
        sleep of at most 15 s (a run renews its lock there); False means stop waiting."""
        self.redis, self.prefix, self.max_wait, self.while_waiting = redis, prefix, max_wait, while_waiting
        self._script = redis.register_script(_ACQUIRE)

    def acquire(self, account: str, limits: list[tuple[int, float]]) -> float:
        """Like `try_acquire`, but waits for the turn when that takes no more than `max_wait` in all."""
        waited = 0.0
        while True:
            wait = self.try_acquire(account, limits)
            if wait <= 0 or waited + wait > self.max_wait:
                return wait
            if self.while_waiting is not None and not self.while_waiting():
                return wait
            step = min(wait, 15.0)
            time.sleep(step)
            waited += step

    def try_acquire(self, account: str, limits: list[tuple[int, float]]) -> float:
        """0 if a request may go now (and it is counted), else the seconds to wait."""
        seconds, micros = self.redis.time()
        now_ms = seconds * 1000 + micros // 1000
        keys = [f"{self.prefix}:{account}:{limit}:{int(window * 1000)}" for limit, window in limits]
        args = [now_ms]
        for limit, window in limits:
            args += [limit, int(window * 1000)]
        args.append(uuid.uuid4().hex)
        wait_ms = int(self._script(keys=keys, args=args))
        return wait_ms / 1000

    @contextmanager
    def concurrency(self, account: str, maximum: int) -> Iterator[bool]:
        """Holds one of `maximum` slots for the block; yields False (holding none) when all are taken."""
        key = f"{self.prefix}:{account}:inflight"
        taken = self.redis.incr(key)
        self.redis.expire(key, 300)  # a crashed worker's slot frees itself
        try:
            yield taken <= maximum
        finally:
            self.redis.decr(key)

    def count(self, side: str, account: str, kind: str) -> None:
        self.redis.hincrby(f"ledgersync:requests:{side}:{account}", kind, 1)

    def counts(self, side: str, account: str) -> dict[str, int]:
        raw = self.redis.hgetall(f"ledgersync:requests:{side}:{account}")
        return {k.decode(): int(v) for k, v in raw.items()}
