"""Signed-in sessions, kept server-side in Redis so that they can end for good.

Flask's session cookie is signed, not revocable: a copy of it works until it expires. So the cookie
carries only a random session id, and the session's facts (which portal, which user, whether they
may change things) live here, keyed by that id. Signing out deletes the entry, so a replayed cookie
finds nothing; an entry idle for IDLE_SECONDS expires by itself; uninstalling, disconnecting, or
HubSpot refusing the installation's token ends every session of the portal. Workers can end them
too (a refresh refused for good), which is why this lives in `sync/`, not in a blueprint.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from redis import Redis

IDLE_SECONDS = 8 * 3600  # an idle session ends after a working day, not 31 days
_PREFIX = "ledgersync:session:"


class SessionStore:
    def __init__(self, redis: Redis, idle_seconds: int = IDLE_SECONDS) -> None:
        self.redis, self.idle_seconds = redis, idle_seconds

    def start(self, installation_id: int, facts: dict[str, Any]) -> str:
        """A new session for a signed-in user: its id, for the cookie."""
        session_id = secrets.token_urlsafe(32)
        record = json.dumps({"installation_id": installation_id, **facts})
        pipe = self.redis.pipeline()
        pipe.set(_PREFIX + session_id, record, ex=self.idle_seconds)
        pipe.sadd(self._portal_key(installation_id), session_id)
        pipe.expire(self._portal_key(installation_id), self.idle_seconds)
        pipe.execute()
        return session_id

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        """The session's facts, its idle time restarted; None when it ended or never was."""
        if not session_id or not isinstance(session_id, str) or len(session_id) > 128:
            return None
        key = _PREFIX + session_id
        record = self.redis.getex(key, ex=self.idle_seconds)  # read and restart the idle time at once
        if record is None:
            return None
        facts = json.loads(record)
        self.redis.expire(self._portal_key(facts["installation_id"]), self.idle_seconds)
        return facts

    def end(self, session_id: str | None) -> None:
        if not session_id:
            return
        record = self.redis.getdel(_PREFIX + session_id)
        if record is not None:
            self.redis.srem(self._portal_key(json.loads(record)["installation_id"]), session_id)

    def end_all(self, installation_id: int, keep: str | None = None) -> int:
        """End every session of a portal (uninstalled, disconnected), but `keep`: how many ended."""
        key = self._portal_key(installation_id)
        ids = [i.decode() if isinstance(i, bytes) else i for i in self.redis.smembers(key)]
        ended = [i for i in ids if i != keep]
        if ended:
            self.redis.delete(*(_PREFIX + i for i in ended))
            self.redis.srem(key, *ended)
        return len(ended)

    @staticmethod
    def _portal_key(installation_id: int) -> str:
        return f"{_PREFIX}portal:{installation_id}"
