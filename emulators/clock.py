"""Emulated time, shared by the emulators: real time, moved forward on request, and compressible.

Token expiry, rate-limit windows, webhook retries and record timestamps all
read one `Clock`, so a test can expire a token or a benchmark can run a day of
retries in seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Emulated time: real time, shifted by `advance()` and sped up by `speed`.

    Token expiry, rate-limit windows and record timestamps all read this
    clock, so a test can expire a token or a benchmark can compress time.
    """

    def __init__(self) -> None:
        self._anchor_real = time.monotonic()
        self._anchor_emulated = time.time()
        self.speed = 1.0

    def now(self) -> float:
        """Seconds since the epoch, emulated."""
        return self._anchor_emulated + (time.monotonic() - self._anchor_real) * self.speed

    def advance(self, seconds: float) -> None:
        self._anchor_emulated += seconds

    def set_speed(self, speed: float) -> None:
        self._anchor_emulated, self._anchor_real = self.now(), time.monotonic()
        self.speed = speed

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def iso(self) -> str:
        """ISO-8601 in UTC with milliseconds and Z (HubSpot's form)."""
        ms = self.now_ms()
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    def datetime(self, tz=UTC) -> datetime:
        return datetime.fromtimestamp(self.now(), tz)
