"""OAuth tokens at rest (encrypted) and their refresh: single-flight across every worker.

A token is refreshed when it has less than REFRESH_MARGIN left. Only one
process refreshes a given token at a time (a Redis lock); it re-reads the row
under the lock (someone may have just refreshed it), refreshes, and commits
with a compare-and-swap on the row's version. QBO rotates refresh tokens, and
the rotated-out one dies at once: the new pair is committed before anything
uses it, so a crash after the refresh cannot lose it.

A refresh refused for good (invalid_grant, a deleted refresh token) marks the
connection "needs reconnect" (QBO) or the installation uninstalled (HubSpot),
pauses its syncs and leaves one notification — it does not raise a failure
per record.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync.clients import errors
from sync.clients.hubspot import HubSpotOAuth, TokenSet
from sync.clients.quickbooks import QuickBooksOAuth
from sync.runtime import Runtime
from sync.store.models import Installation, Notification, OAuthToken, QboCompany, SyncSettings, utcnow

log = logging.getLogger(__name__)
REFRESH_MARGIN = timedelta(minutes=5)
# QBO refresh tokens expire ~100 days after their last use: keep quiet connections well inside that.
QUIET_REFRESH_AFTER = timedelta(days=30)
LOCK_TIMEOUT, LOCK_WAIT = 60, 30


def encrypted_values(runtime: Runtime, tokens: TokenSet) -> dict:
    """The columns of a token row for a token set, encrypted."""
    values = {
        "access_token_encrypted": runtime.cipher.encrypt(tokens.access_token),
        "access_token_expires_at": tokens.expires_at,
        "refresh_token_expires_at": tokens.refresh_expires_at,
    }
    if tokens.refresh_token:
        values["refresh_token_encrypted"] = runtime.cipher.encrypt(tokens.refresh_token)
    if tokens.scopes:
        values["scopes"] = tokens.scopes
    return values


def store_tokens(session: Session, runtime: Runtime, token: OAuthToken | None, tokens: TokenSet, **owner) -> OAuthToken:
    """Write a token set into `token`, or into a new row for `owner` (installation, company, provider)."""
    if token is None:
        token = OAuthToken(version=0, **owner)
        session.add(token)
    for name, value in encrypted_values(runtime, tokens).items():
        setattr(token, name, value)
    token.version = (token.version or 0) + 1
    return token


def hubspot_token(session: Session, installation_id: int) -> OAuthToken | None:
    return session.scalar(
        select(OAuthToken).where(OAuthToken.installation_id == installation_id, OAuthToken.provider == "hubspot")
    )


def quickbooks_token(session: Session, company_id: int) -> OAuthToken | None:
    return session.scalar(
        select(OAuthToken).where(OAuthToken.qbo_company_id == company_id, OAuthToken.provider == "quickbooks")
    )


class TokenManager:
    """Valid access tokens on demand, refreshed single-flight."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def hubspot_access_token(self, installation_id: int) -> str:
        return self._access_token("hubspot", installation_id)

    def quickbooks_tokens(self, company_id: int) -> tuple[str, str]:
        """(access token, refresh token): python-quickbooks must be built with both, never refresh itself."""
        access = self._access_token("quickbooks", company_id)
        with self.runtime.database.session() as session:
            token = quickbooks_token(session, company_id)
            return access, self.runtime.cipher.decrypt(token.refresh_token_encrypted)

    def refused(self, provider: str, owner_id: int, access_token: str) -> str:
        """The remote answered 401 to `access_token` before we thought it expired (revoked, or a clock
        apart): refresh it now — unless another worker already has — and return the token to use."""
        return self._access_token(provider, owner_id, force=True, refused=access_token)

    def _access_token(self, provider: str, owner_id: int, force: bool = False, refused: str | None = None) -> str:
        cipher = self.runtime.cipher
        with self.runtime.database.session() as session:
            token = self._load(session, provider, owner_id)
            if not force and token.access_token_expires_at - REFRESH_MARGIN > utcnow():
                return cipher.decrypt(token.access_token_encrypted)
        lock = self.runtime.jobs.connection.lock(
            f"ledgersync:token-refresh:{provider}:{owner_id}", timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT
        )
        if not lock.acquire():
            raise errors.Transient(provider, "another worker is refreshing this token; try again shortly")
        try:
            with self.runtime.database.session() as session:
                token = self._load(session, provider, owner_id)  # it may have been refreshed meanwhile
                current = cipher.decrypt(token.access_token_encrypted)
                if not force and token.access_token_expires_at - REFRESH_MARGIN > utcnow():
                    return current
                if refused is not None and current != refused:
                    return current  # another worker refreshed it after the 401 we saw
                refresh_token = cipher.decrypt(token.refresh_token_encrypted)
                token_id, version = token.id, token.version
            try:
                fresh = self._refresh(provider, refresh_token)
            except errors.Unauthorized as error:
                self._mark_refused(provider, owner_id, error)
                raise errors.NeedsReconnect(f"{provider} refused the refresh: {error.message}") from error
            with self.runtime.database.session() as session:
                # Compare-and-swap on the version we read: a guard should the lock ever have expired.
                changed = session.execute(
                    update(OAuthToken)
                    .where(OAuthToken.id == token_id, OAuthToken.version == version)
                    .values(**encrypted_values(self.runtime, fresh), version=version + 1)
                ).rowcount
            if changed == 0:
                raise errors.Transient(provider, "the token changed while we refreshed it; try again")
            log.info("token refreshed", extra={"provider": provider, "owner": owner_id, "version": version + 1})
            self.runtime.token_refreshed(provider, fresh.access_token)
            return fresh.access_token
        finally:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - an expired lock is released already
                log.warning("token refresh lock had expired", extra={"provider": provider, "owner": owner_id})

    def _refresh(self, provider: str, refresh_token: str) -> TokenSet:
        if provider == "hubspot":
            return HubSpotOAuth(self.runtime.config).refresh(refresh_token)
        return QuickBooksOAuth(self.runtime.config).refresh(refresh_token)

    @staticmethod
    def _load(session: Session, provider: str, owner_id: int) -> OAuthToken:
        token = hubspot_token(session, owner_id) if provider == "hubspot" else quickbooks_token(session, owner_id)
        if token is None or token.refresh_token_encrypted is None:
            raise errors.NeedsReconnect(f"no {provider} token for {owner_id}")
        return token

    def _mark_refused(self, provider: str, owner_id: int, error: errors.ApiError) -> None:
        with self.runtime.database.session() as session:
            if provider == "quickbooks":
                company = session.get(QboCompany, owner_id)
                company.status = "needs_reconnect"
                installation_id = company.installation_id
                pause_syncs(session, company.id, "QuickBooks needs reconnecting")
                notify(
                    session,
                    installation_id,
                    "qbo_needs_reconnect",
                    "error",
                    "Reconnect QuickBooks Online",
                    f"QuickBooks refused our access to {company.company_name or company.realm_id} "
                    f"({error.message}). Syncs are paused until you connect it again.",
                    dedupe_key=f"qbo_needs_reconnect:{company.id}",
                    qbo_company_id=company.id,
                )
            else:
                installation = session.get(Installation, owner_id)
                installation.status, installation.uninstalled_at = "uninstalled", utcnow()
                for company in installation.qbo_companies:
                    pause_syncs(session, company.id, "the HubSpot app was uninstalled")
            log.warning(
                "refresh refused for good", extra={"provider": provider, "owner": owner_id, "reason": error.message}
            )

    def refresh_quiet_connections(self) -> int:
        """Refresh QBO tokens not used for QUIET_REFRESH_AFTER, so their 100-day life restarts."""
        cutoff = datetime.now(UTC) + timedelta(days=100) - QUIET_REFRESH_AFTER
        with self.runtime.database.session() as session:
            ids = list(
                session.scalars(
                    select(OAuthToken.qbo_company_id)
                    .join(QboCompany)
                    .where(
                        OAuthToken.provider == "quickbooks",
                        QboCompany.status == "connected",
                        OAuthToken.refresh_token_expires_at < cutoff,
                    )
                )
            )
        refreshed = 0
        for company_id in ids:
            try:
                self._access_token("quickbooks", company_id, force=True)
                refreshed += 1
            except (errors.NeedsReconnect, errors.ApiError) as error:
                log.warning("quiet refresh failed", extra={"company": company_id, "reason": str(error)})
        return refreshed

    def rotate_encryption_key(self) -> int:
        """Re-encrypt every token with the newest TOKEN_ENCRYPTION_KEY (the first listed)."""
        count = 0
        with self.runtime.database.session() as session:
            for token in session.scalars(select(OAuthToken)):
                token.access_token_encrypted = self.runtime.cipher.rotate(token.access_token_encrypted)
                if token.refresh_token_encrypted:
                    token.refresh_token_encrypted = self.runtime.cipher.rotate(token.refresh_token_encrypted)
                count += 1
        return count


def pause_syncs(session: Session, company_id: int, reason: str) -> None:
    for settings in session.scalars(
        select(SyncSettings).where(SyncSettings.qbo_company_id == company_id, SyncSettings.status == "active")
    ):
        settings.status, settings.paused_reason = "paused", reason


def notify(
    session: Session,
    installation_id: int,
    kind: str,
    level: str,
    title: str,
    body: str,
    dedupe_key: str | None = None,
    qbo_company_id: int | None = None,
) -> None:
    """One notice per ongoing condition: an unread one with the same key is not repeated."""
    if dedupe_key and session.scalar(
        select(Notification).where(
            Notification.installation_id == installation_id, Notification.dedupe_key == dedupe_key
        )
    ):
        return
    session.add(
        Notification(
            installation_id=installation_id,
            qbo_company_id=qbo_company_id,
            kind=kind,
            level=level,
            title=title,
            body=body,
            dedupe_key=dedupe_key,
        )
    )
