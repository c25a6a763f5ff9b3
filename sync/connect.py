"""Installing the app, signing in, connecting QuickBooks, and disconnecting: the services behind the pages.

The blueprints only handle the HTTP (state checks, redirects, pages); what is
stored, refused and revoked is decided here, so the CLI and later settings
pages can call the same functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from sync.clients import errors
from sync.clients.hubspot import HubSpotOAuth, TokenSet
from sync.clients.quickbooks import QuickBooksClient, QuickBooksOAuth
from sync.runtime import Runtime
from sync.sessions import SessionStore
from sync.store.models import Installation, OAuthToken, QboCompany, SyncSettings, utcnow
from sync.tokens import TokenManager, hubspot_token, pause_syncs, quickbooks_token, store_tokens

log = logging.getLogger(__name__)


class ConnectRefused(Exception):
    """Something the user must be told plainly; nothing was stored."""


@dataclass(frozen=True)
class SignedIn:
    installation_id: int
    hub_id: int
    user_id: int | None
    user_email: str | None
    newly_installed: bool
    can_change: bool  # may change the installation (connect, disconnect, uninstall, settings); else look only


def install_or_sign_in(runtime: Runtime, code: str) -> SignedIn:
    """Finish HubSpot's OAuth: a new (or reinstalled) portal is installed; a user of an installed one signs in."""
    oauth = HubSpotOAuth(runtime.config)
    tokens = oauth.exchange_code(code)
    info = oauth.token_info(tokens.access_token)
    with runtime.database.session() as session:
        installation = session.scalar(select(Installation).where(Installation.hub_id == info["hub_id"]))
        newly = installation is None or installation.status == "uninstalled"
        if installation is None:
            installation = Installation(hub_id=info["hub_id"])
            session.add(installation)
        if newly:
            installation.status, installation.uninstalled_at = "active", None
            installation.installed_at = utcnow()
            installation.installed_by_user_id, installation.installed_by_email = info["user_id"], info["user"]
        installation.hub_domain = info["hub_domain"]
        session.flush()
        existing = hubspot_token(session, installation.id)
        if newly or existing is None:
            store_tokens(
                session,
                runtime,
                existing,
                TokenSet(tokens.access_token, tokens.refresh_token, tokens.expires_at, scopes=" ".join(info["scopes"])),
                installation_id=installation.id,
                provider="hubspot",
            )
        can_change = newly or _can_change(oauth, installation, tokens.access_token, info["user_id"])
        if not (newly or existing is None):
            # A sign-in: the installation keeps its own token; this user's is not needed.
            _quietly(lambda: oauth.delete_refresh_token(tokens.refresh_token))
        log.info("hubspot sign-in", extra={"hub_id": info["hub_id"], "installed": newly, "can_change": can_change})
        return SignedIn(installation.id, info["hub_id"], info["user_id"], info["user"], newly, can_change)


def _can_change(oauth: HubSpotOAuth, installation: Installation, access_token: str, user_id: int | None) -> bool:
    """Who may change an installation: the user who installed it (HubSpot let them install apps), and the
    portal's super admins. HubSpot shows no other permission to an app, so everyone else may look only.
    If HubSpot cannot say (an installation from before we asked for `settings.users.read`), look only."""
    if user_id is not None and user_id == installation.installed_by_user_id:
        return True
    if user_id is None:
        return False
    try:
        return oauth.is_super_admin(access_token, user_id)
    except errors.ApiError as error:
        log.warning("could not read the user's rights; signed in to look only", extra={"reason": error.message})
        return False


def connect_quickbooks(runtime: Runtime, installation_id: int, code: str, realm_id: str) -> QboCompany:
    """Finish Intuit's OAuth for an installation: store the company and its tokens, then pre-flight it."""
    oauth = QuickBooksOAuth(runtime.config)
    environment = runtime.config.intuit_environment
    with runtime.database.session() as session:
        taken = session.scalar(
            select(QboCompany).where(
                QboCompany.realm_id == realm_id,
                QboCompany.environment == environment,
                QboCompany.status != "disconnected",
            )
        )
        mine = session.scalar(
            select(QboCompany).where(QboCompany.installation_id == installation_id, QboCompany.status != "disconnected")
        )
    if taken is not None and taken.installation_id != installation_id:
        raise ConnectRefused(
            "This QuickBooks company is already connected to another HubSpot account. "
            "Disconnect it there first; a company syncs with one HubSpot account at a time."
        )
    if mine is not None and mine.realm_id != realm_id:
        raise ConnectRefused(
            f"This HubSpot account is already connected to {mine.company_name or mine.realm_id}. "
            "Disconnect it before connecting another company (one company per account)."
        )
    tokens = oauth.exchange_code(code, realm_id)
    client = QuickBooksClient(runtime.config, realm_id, tokens.access_token, tokens.refresh_token)
    info, preferences = client.company_info(), client.preferences()
    with runtime.database.session() as session:
        company = session.scalar(
            select(QboCompany).where(
                QboCompany.installation_id == installation_id,
                QboCompany.realm_id == realm_id,
                QboCompany.environment == environment,
            )
        )
        if company is None:
            company = QboCompany(installation_id=installation_id, realm_id=realm_id, environment=environment)
            session.add(company)
        currency = preferences.get("CurrencyPrefs", {})
        company.status, company.connected_at, company.disconnected_at = "connected", utcnow(), None
        company.company_name = info.get("CompanyName")
        company.country = info.get("Country")
        company.home_currency = (currency.get("HomeCurrency") or {}).get("value")
        company.multi_currency = bool(currency.get("MultiCurrencyEnabled"))
        company.preflight = {"warnings": preflight_warnings(info, preferences)}
        session.flush()
        store_tokens(
            session,
            runtime,
            quickbooks_token(session, company.id),
            tokens,
            installation_id=installation_id,
            qbo_company_id=company.id,
            provider="quickbooks",
        )
        log.info("quickbooks connected", extra={"installation": installation_id, "realm": realm_id})
        return company


def preflight_warnings(company_info: dict, preferences: dict) -> list[dict]:
    """What the user must know at once about this company (shown on the connection page)."""
    warnings = []
    country = company_info.get("Country")
    if country and country != "US":
        warnings.append(
            {
                "code": "non_us_company",
                "level": "error",
                "title": "Invoice sync is unavailable",
                "body": f"This company is in {country}. QuickBooks requires a tax code on every invoice "
                "line outside the US, and HubSpot invoices carry no tax, so invoices cannot sync. "
                "Contacts and products still can.",
            }
        )
    sales = preferences.get("SalesFormsPrefs", {})
    if sales.get("CustomTxnNumbers"):
        warnings.append(
            {
                "code": "custom_txn_numbers",
                "level": "warning",
                "title": "Turn off custom transaction numbers",
                "body": "QuickBooks lets you type invoice numbers yourself. Numbers coming from HubSpot "
                "can then collide with ones you typed and be refused as duplicates; we recommend "
                "turning custom transaction numbers off in QuickBooks (Account and settings > "
                "Sales > Custom transaction numbers).",
            }
        )
    if not preferences.get("AccountingInfoPrefs", {}).get("BookCloseDate"):
        warnings.append(
            {
                "code": "no_closing_date",
                "level": "info",
                "title": "Lock your closed periods",
                "body": "No closing date is set. Set one in QuickBooks (Advanced > Accounting > Close "
                "the books) so that a change in HubSpot can never alter a period you have closed.",
            }
        )
    if preferences.get("CurrencyPrefs", {}).get("MultiCurrencyEnabled"):
        warnings.append(
            {
                "code": "multi_currency",
                "level": "info",
                "title": "Multicurrency is on",
                "body": "Invoices sync in the customer's currency; a customer's currency cannot change "
                "once it has transactions, so a HubSpot invoice in another currency than its "
                "customer's will be refused and explained.",
            }
        )
    return warnings


def disconnect_quickbooks(
    runtime: Runtime, installation_id: int, company_id: int, reason: str = "by user", keep_session: str | None = None
) -> None:
    """Ours: revoke at Intuit (best effort), delete the tokens, stop the syncs; the links are kept. The
    portal's other signed-in sessions end (`keep_session`, the one that asked, stays)."""
    with runtime.database.session() as session:
        company = session.get(QboCompany, company_id)
        if company is None or company.installation_id != installation_id:
            raise ConnectRefused("No such QuickBooks connection for this HubSpot account.")
        token = quickbooks_token(session, company.id)
        refresh = (
            runtime.cipher.decrypt(token.refresh_token_encrypted) if token and token.refresh_token_encrypted else None
        )
    if refresh:
        _quietly(lambda: QuickBooksOAuth(runtime.config).revoke(refresh))
    with runtime.database.session() as session:
        company = session.get(QboCompany, company_id)
        company.status, company.disconnected_at = "disconnected", utcnow()
        for token in session.scalars(select(OAuthToken).where(OAuthToken.qbo_company_id == company_id)):
            session.delete(token)
        pause_syncs(session, company_id, f"QuickBooks disconnected ({reason})")
        for settings in session.scalars(select(SyncSettings).where(SyncSettings.qbo_company_id == company_id)):
            settings.status = "off"
    SessionStore(runtime.jobs.connection).end_all(installation_id, keep=keep_session)
    log.info(
        "quickbooks disconnected", extra={"installation": installation_id, "company": company_id, "reason": reason}
    )


def uninstall(runtime: Runtime, installation_id: int) -> None:
    """Ours: disconnect QuickBooks, delete the HubSpot refresh token at HubSpot and here, mark uninstalled."""
    with runtime.database.session() as session:
        installation = session.get(Installation, installation_id)
        companies = [c.id for c in installation.qbo_companies if c.status != "disconnected"]
        token = hubspot_token(session, installation_id)
        refresh = (
            runtime.cipher.decrypt(token.refresh_token_encrypted) if token and token.refresh_token_encrypted else None
        )
    for company_id in companies:
        disconnect_quickbooks(runtime, installation_id, company_id, reason="app uninstalled")
    if refresh:
        _quietly(lambda: HubSpotOAuth(runtime.config).delete_refresh_token(refresh))
    with runtime.database.session() as session:
        installation = session.get(Installation, installation_id)
        installation.status, installation.uninstalled_at = "uninstalled", utcnow()
        token = hubspot_token(session, installation_id)
        if token is not None:
            session.delete(token)
    SessionStore(runtime.jobs.connection).end_all(installation_id)  # everyone in the portal is signed out
    log.info("uninstalled", extra={"installation": installation_id})


def check_hubspot_access(runtime: Runtime, installation_id: int) -> bool:
    """Theirs: is the app still installed? A refresh HubSpot refuses for good marks it uninstalled."""
    try:
        TokenManager(runtime).hubspot_access_token(installation_id)
        return True
    except errors.NeedsReconnect:
        return False


def _quietly(call) -> None:
    """Best effort: a revoke that fails must not stop a disconnect (the tokens are deleted here anyway)."""
    try:
        call()
    except (errors.ApiError, OSError) as error:
        log.warning("best-effort call failed", extra={"reason": str(error)})
