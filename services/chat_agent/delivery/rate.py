"""The channel's push rate: a token bucket at `LINE_PUSH_RATE_PER_S` (docs/interfaces.md
§ Campaign drops).

The bucket lives in Redis (shared.ratelimit, one key per channel), so every chat_agent
worker process together stays under the channel's rate; without Redis each process has
its own in-process bucket. Its burst is a tenth of a second's pushes, so the platform
never sees more than the rate in any window of its own. When Redis cannot be reached the
bucket lets pushes through (fail open): a 429 from the platform is still honoured by the
delivery loop's Retry-After pause.

At the channel's rate the bucket is empty most of the time. A refused push then waits
until a lease's worth of tokens has refilled (`Bucket.lease`: 20 at 2,000/s, so 10 ms),
not just until the next token: each round trip to Redis then brings a lease, where
waiting for one token brought one or two a trip. The rate is the same, as the bucket
keeps filling meanwhile (up to its burst).
"""

from __future__ import annotations

import threading

from shared.ratelimit import Bucket, RateLimiter

BUCKET = "line_push"
CHANNEL_KEY = "channel"  # one channel per deployment (LINE_CHANNEL_ACCESS_TOKEN)
MAX_WAIT_S = 0.25  # re-check the stop signal at least this often while waiting


class PushRate:
    """Waits for a push token before each push."""

    def __init__(self, limiter: RateLimiter, rate_per_s: float) -> None:
        self.bucket = Bucket(BUCKET, rate_per_s, max(1, int(rate_per_s / 10)), fail_open=True)
        self._limiter = limiter
        self._lease_refill_s = max(0.001, self.bucket.lease / rate_per_s)

    def take(self) -> float:
        """Take one push token if there is one (0.0); else the seconds to wait before
        asking again: until a lease's worth has refilled (at most MAX_WAIT_S)."""
        verdict = self._limiter.take(self.bucket, CHANNEL_KEY)
        if verdict.allowed:
            return 0.0
        return min(MAX_WAIT_S, max(self._lease_refill_s, verdict.retry_after_s))

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Take one push token, waiting for it; False if `stop` was set meanwhile."""
        while True:
            wait = self.take()
            if not wait:
                return True
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                threading.Event().wait(wait)
