"""QuickBooks Online through python-quickbooks 0.9.12 and intuit-oauth 1.2.6, as plain data.

The traps, handled here once:
- `QuickBooks(...)` refreshes inside its constructor when it has no access
  token, rotating the refresh token behind our back: we always build it with an
  access token obtained under the token lock (sync.tokens).
- QBO's 429 is XML without Retry-After, which python-quickbooks reports as a
  generic code 10000: we look at the HTTP status before it parses anything.
- python-quickbooks' "sparse" objects still send defaults that blank fields:
  updates here are hand-built dicts with `"sparse": true`.
- Plain http is allowed only to a local emulator (OAUTHLIB_INSECURE_TRANSPORT is
  set for that case alone, never for a real host).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from sync.clients import errors
from sync.clients.hubspot import TokenSet
from sync.clients.ratelimit import QBO_CONCURRENCY, QBO_LIMITS, RateLimiter
from sync.config import Config, is_local_host

MINOR_VERSION = 75
ACCESS_SECONDS, REFRESH_SECONDS = 3600, 8_726_400

# QBO's 429 names no wait. Our own limiter keeps us under the realm's limits, so a 429 means something
# outside it shares the budget (a person's script with our token, a clock that drifted): most often the
# 10-per-second window, which 10 s clears. A whole minute's wait would make one stray burst hold back
# every change for a minute; if the minute window is really spent, the retry meets our limiter first.
REMOTE_THROTTLE_RETRY_SECONDS = 10


def _allow_plain_http_for_local(url: str) -> None:
    if urlsplit(url).scheme == "http" and is_local_host(urlsplit(url).hostname):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


class QuickBooksOAuth:
    """The app's side of Intuit OAuth 2.0."""

    def __init__(self, settings: Config) -> None:
        self.settings = settings

    @property
    def redirect_uri(self) -> str:
        return f"{self.settings.app_base_url}/oauth/quickbooks/callback"

    def auth_client(self, **tokens) -> AuthClient:
        """intuit-oauth reads the discovery document (a network call) when built; its environment is the URL."""
        try:
            return AuthClient(
                self.settings.intuit_client_id,
                self.settings.intuit_client_secret,
                self.redirect_uri,
                environment=self.settings.intuit_discovery_url,
                **tokens,
            )
        except AuthClientError as error:
            raise errors.Transient("quickbooks", f"discovery document unavailable ({error.status_code})") from error

    def authorize_url(self, state: str) -> str:
        return self.auth_client().get_authorization_url([Scopes.ACCOUNTING], state_token=state)

    def exchange_code(self, code: str, realm_id: str) -> TokenSet:
        client = self.auth_client()
        _oauth_call(lambda: client.get_bearer_token(code, realm_id=realm_id))
        return _token_set(client)

    def refresh(self, refresh_token: str) -> TokenSet:
        client = self.auth_client()
        _oauth_call(lambda: client.refresh(refresh_token=refresh_token))
        return _token_set(client)

    def revoke(self, token: str) -> None:
        client = self.auth_client()
        _oauth_call(lambda: client.revoke(token=token))


def _token_set(client: AuthClient) -> TokenSet:
    now = datetime.now(UTC)
    return TokenSet(
        access_token=client.access_token,
        refresh_token=client.refresh_token,
        expires_at=now + timedelta(seconds=int(client.expires_in or ACCESS_SECONDS)),
        refresh_expires_at=now
        + timedelta(seconds=int(getattr(client, "x_refresh_token_expires_in", None) or REFRESH_SECONDS)),
        scopes=Scopes.ACCOUNTING.value,
    )


def _oauth_call(call) -> None:
    try:
        call()
    except AuthClientError as error:
        try:
            reason = json.loads(error.content or b"{}").get("error", "")
        except ValueError:
            reason = ""
        if error.status_code in (400, 401) and reason in ("invalid_grant", "invalid_client", "invalid_token"):
            raise errors.Unauthorized("quickbooks", reason, status=error.status_code, code=reason) from error
        if error.status_code == 429:
            raise errors.RateLimited("quickbooks", "OAuth throttled", retry_after=60, status=429) from error
        raise errors.Transient("quickbooks", f"OAuth {error.status_code}", status=error.status_code) from error


class _StatusAwareQuickBooks(QuickBooks):
    """python-quickbooks, but a 429 becomes RateLimited before it tries to read the XML as JSON."""

    def process_request(self, request_type, url, headers="", params="", data=""):
        response = super().process_request(request_type, url, headers=headers, params=params, data=data)
        if response.status_code == 429:
            wait = REMOTE_THROTTLE_RETRY_SECONDS
            raise errors.RateLimited("quickbooks", "ThrottleExceeded (3001)", retry_after=wait, status=429, code="3001")
        if response.status_code >= 500:
            raise errors.Transient(
                "quickbooks", f"HTTP {response.status_code}", status=response.status_code, detail=response.text[:2000]
            )
        return response


class QuickBooksClient:
    """Accounting API calls for one realm with one access token; limited and counted through Redis."""

    def __init__(
        self,
        settings: Config,
        realm_id: str,
        access_token: str,
        refresh_token: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        _allow_plain_http_for_local(settings.qbo_api_base_url)
        self.realm_id, self.limiter = realm_id, limiter
        auth = QuickBooksOAuth(settings).auth_client(
            access_token=access_token, refresh_token=refresh_token, realm_id=realm_id
        )
        self.qb = _StatusAwareQuickBooks(
            auth_client=auth, refresh_token=refresh_token, company_id=realm_id, minorversion=MINOR_VERSION
        )
        self.qb.api_url_v3 = f"{settings.qbo_api_base_url}/v3"

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict | None = None,
        content_type: str = "application/json",
        kind: str = "api",
    ) -> dict:
        url = f"{self.qb.api_url}/company/{self.realm_id}/{path}"
        if self.limiter is None:
            return self._send(method, url, body, params, content_type)
        wait = self.limiter.acquire(f"qbo:{self.realm_id}", QBO_LIMITS[kind])
        if wait > 0:
            raise errors.RateLimited("quickbooks", f"realm {self.realm_id} limit", retry_after=wait)
        self.limiter.count("quickbooks", self.realm_id, kind)
        with self.limiter.concurrency(f"qbo:{self.realm_id}", QBO_CONCURRENCY) as admitted:
            if not admitted:
                raise errors.RateLimited("quickbooks", f"realm {self.realm_id}: 10 requests in flight", retry_after=1)
            return self._send(method, url, body, params, content_type)

    def _send(self, method: str, url: str, body: Any, params: dict | None, content_type: str) -> dict:
        data = body if isinstance(body, str) or body is None else json.dumps(body, default=_json_number)
        try:
            return self.qb.make_request(method, url, data, content_type=content_type, params=params or {})
        except AuthorizationException as error:
            raise errors.Unauthorized("quickbooks", error.message, status=401, detail=error.detail) from error
        except QuickbooksException as error:
            raise _classify(error) from error
        except OSError as error:
            raise errors.Transient("quickbooks", f"{type(error).__name__}: {error}") from error

    # --- operations -----------------------------------------------------------------------------------------------

    def company_info(self) -> dict:
        return self._request("GET", f"companyinfo/{self.realm_id}")["CompanyInfo"]

    def preferences(self) -> dict:
        return self._request("GET", "preferences")["Preferences"]

    def query(self, statement: str) -> dict:
        return self._request("POST", "query", statement, content_type="application/text")["QueryResponse"]

    def cdc(self, entities: list[str], changed_since: str) -> tuple[dict[str, list[dict]], str]:
        """Changes since a moment: ({entity: objects (deleted ones carry status "Deleted")}, the answer's time)."""
        answer = self._request("GET", "cdc", params={"entities": ",".join(entities), "changedSince": changed_since})
        changes: dict[str, list[dict]] = {entity: [] for entity in entities}
        for response in answer["CDCResponse"]:
            for group in response.get("QueryResponse", []):
                for entity in entities:
                    changes[entity] += group.get(entity, [])
        return changes, answer["time"]

    def query_all(self, statement: str, entity: str) -> list[dict]:
        """Every row of a query, paged by 1,000 (QBO's maximum)."""
        rows, start = [], 1
        while True:
            page = self.query(f"{statement} startposition {start} maxresults 1000").get(entity, [])
            rows += page
            if len(page) < 1000:
                return rows
            start += 1000

    def read(self, entity: str, entity_id: str) -> dict:
        return self._request("GET", f"{entity.lower()}/{entity_id}")[entity]

    def create(self, entity: str, body: dict, request_id: str | None = None) -> dict:
        params = {"requestid": request_id} if request_id else None
        return self._request("POST", entity.lower(), body, params=params)[entity]

    def batch_create(self, entity: str, bodies: dict[str, dict]) -> dict[str, dict | errors.ApiError]:
        """Create up to 30 records in one call: {batch id: the record, or the error of that item alone}."""
        return self.batch_write(entity, "create", bodies)

    def batch_write(self, entity: str, operation: str, bodies: dict[str, dict]) -> dict[str, dict | errors.ApiError]:
        """Up to 30 creates or (sparse) updates in one call; each item answers for itself (HTTP 200 regardless)."""
        items = [{"bId": batch_id, "operation": operation, entity: body} for batch_id, body in bodies.items()]
        answer = self._request("POST", "batch", {"BatchItemRequest": items}, kind="batch")
        results: dict[str, dict | errors.ApiError] = {}
        for item in answer.get("BatchItemResponse", []):
            if "Fault" in item:
                error = item["Fault"]["Error"][0]
                results[item["bId"]] = _classify(
                    QuickbooksException(
                        error.get("Message", ""), int(error.get("code", 10000)), error.get("Detail", "")
                    )
                )
            else:
                results[item["bId"]] = item[entity]
        return results

    def sparse_update(
        self, entity: str, entity_id: str, sync_token: str, changes: dict, request_id: str | None = None
    ) -> dict:
        body = {**changes, "Id": entity_id, "SyncToken": sync_token, "sparse": True}
        params = {"requestid": request_id} if request_id else None
        return self._request("POST", entity.lower(), body, params=params)[entity]

    def full_update(self, entity: str, body: dict) -> dict:
        """A full update: `body` is the whole entity (its Id and SyncToken included); what it leaves out is
        cleared. Used where QBO replaces a whole array anyway (a document's lines)."""
        return self._request("POST", entity.lower(), {**body, "sparse": False})[entity]

    def void(self, entity: str, entity_id: str, sync_token: str) -> dict:
        """Void a transaction (QBO zeroes its amounts and keeps it): `?operation=void` for an invoice."""
        body = {"Id": entity_id, "SyncToken": sync_token}
        return self._request("POST", entity.lower(), body, params={"operation": "void"})[entity]

    def delete(self, entity: str, entity_id: str, sync_token: str) -> None:
        """Delete a transaction (name-list entities cannot be deleted: they are made inactive)."""
        self._request(
            "POST", entity.lower(), {"Id": entity_id, "SyncToken": sync_token}, params={"operation": "delete"}
        )


def _json_number(value: Any) -> float:
    """Money is Decimal in our code and a JSON number on the wire. QBO amounts have at most 15
    significant digits, which a float carries exactly (its repr is the shortest text that reads back)."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _classify(error: QuickbooksException) -> errors.ApiError:
    code = str(error.error_code)
    kwargs = {"status": 400, "code": code, "detail": error.detail}
    if code == "10000" and "ThrottleExceeded" in (error.message or ""):
        return errors.RateLimited("quickbooks", error.message, retry_after=REMOTE_THROTTLE_RETRY_SECONDS, **kwargs)
    if code == "5010":
        return errors.StaleObject("quickbooks", error.message, **kwargs)
    if code in ("6240", "6140"):
        return errors.Duplicate("quickbooks", error.message, **kwargs)
    if code == "610":
        return errors.NotFound("quickbooks", error.message, **kwargs)
    if code.startswith("3") and len(code) == 4:
        return errors.Unauthorized("quickbooks", error.message, **kwargs)
    if int(code) >= 10000:
        return errors.Transient("quickbooks", error.message, **kwargs)
    return errors.ValidationFailed("quickbooks", error.message, **kwargs)
