"""Time as both APIs and both databases spell it, turned into one thing: an aware UTC-comparable datetime.

HubSpot writes ISO 8601 with "Z" or epoch milliseconds; QBO writes offsets without a colon
("2015-10-05T14:42:19-0700") in its webhooks and with one elsewhere; SQLite hands back naive
datetimes. Every comparison of versions goes through here, so they all agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(text: Any) -> datetime | None:
    """A HubSpot or QBO timestamp (ISO 8601 with any offset, or epoch milliseconds) as an aware datetime;
    None for nothing or for what is not a time."""
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        return aware(text)
    value = str(text).strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":  # 2015-10-05T14:42:19-0700
        value = value[:-2] + ":" + value[-2:]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return aware(parsed)


def aware(moment: datetime) -> datetime:
    """A datetime with its zone: a naive one (SQLite's) is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
