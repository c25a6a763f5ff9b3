"""HubSpot through the official SDK (hubspot-api-client 12): OAuth and the CRM, as plain data.

The SDK's traps, handled here once: every SDK package has its own ApiException
(we duck-type on `.status`/`.body`); urllib3's Retry does not retry POST and
raises MaxRetryError, so we do not use it and retry transient failures ourselves;
a create answered with anything but 201 deserializes to None.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot

from sync.clients import errors
from sync.clients.ratelimit import HUBSPOT_LIMITS, RateLimiter
from sync.config import PROJECT_ROOT, Config

log = logging.getLogger(__name__)
T = TypeVar("T")
APP_META = PROJECT_ROOT / "hubspot_extensions" / "src" / "app" / "app-hsmeta.json"
TRANSIENT_RETRIES = 2


@cache
def required_scopes(app_meta: Path = APP_META) -> tuple[str, ...]:
    """The scopes the app asks for: hubspot_extensions/ is the one source of truth."""
    return tuple(json.loads(app_meta.read_text())["config"]["auth"]["requiredScopes"])


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    refresh_expires_at: datetime | None = None
    scopes: str | None = None


def translate(call: Callable[[], T], side: str = "hubspot") -> T:
    """Run an SDK call; turn whatever it raises into our taxonomy."""
    try:
        return call()
    except urllib3.exceptions.MaxRetryError as error:
        raise errors.Transient(side, f"gave up after retries: {error.reason}") from error
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError) as error:
        raise errors.Transient(side, f"{type(error).__name__}: {error}") from error
    except Exception as error:
        status = getattr(error, "status", None)
        if not isinstance(status, int):
            raise
        raise _classify(side, status, getattr(error, "body", None), getattr(error, "headers", None)) from error


def _classify(side: str, status: int, body: str | None, headers) -> errors.ApiError:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    message = parsed.get("message") or f"HTTP {status}"
    category = parsed.get("category") or parsed.get("status")
    kwargs = {"status": status, "code": category, "detail": body[:2000] if body else None}
    if status == 429:
        retry_after = (headers or {}).get("Retry-After")
        wait = float(retry_after) if retry_after and str(retry_after).isdigit() else 10.0
        return errors.RateLimited(side, message, retry_after=wait, **kwargs)
    # OAuth's refusals come as 400 with a status naming the bad grant: a refusal for good.
    if status == 401 or parsed.get("status") in (
        "BAD_REFRESH_TOKEN",
        "BAD_AUTH_CODE",
        "BAD_CLIENT_ID",
        "BAD_REDIRECT_URI",
    ):
        return errors.Unauthorized(side, message, **kwargs)
    if status == 404:
        return errors.NotFound(side, message, **kwargs)
    if status == 409:
        return errors.Duplicate(side, message, **kwargs)
    if status >= 500 or status in (423, 477):
        return errors.Transient(side, message, **kwargs)
    return errors.ValidationFailed(side, message, **kwargs)


class HubSpotOAuth:
    """The app's side of HubSpot OAuth (no token needed)."""

    def __init__(self, settings: Config) -> None:
        self.settings = settings
        self.sdk = HubSpot(host=settings.hubspot_api_base_url)

    @property
    def redirect_uri(self) -> str:
        return f"{self.settings.app_base_url}/oauth/hubspot/callback"

    def authorize_url(self, state: str) -> str:
        from urllib.parse import urlencode

        query = urlencode(
            {
                "client_id": self.settings.hubspot_client_id,
                "redirect_uri": self.redirect_uri,
                "scope": " ".join(required_scopes()),
                "state": state,
            }
        )
        return f"{self.settings.hubspot_authorize_url}?{query}"

    def exchange_code(self, code: str) -> TokenSet:
        return self._tokens(grant_type="authorization_code", code=code, redirect_uri=self.redirect_uri)

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._tokens(grant_type="refresh_token", refresh_token=refresh_token)

    def _tokens(self, **form: str) -> TokenSet:
        answer = translate(
            lambda: self.sdk.oauth.tokens_api.create(
                client_id=self.settings.hubspot_client_id, client_secret=self.settings.hubspot_client_secret, **form
            )
        )
        return TokenSet(
            access_token=answer.access_token,
            refresh_token=answer.refresh_token,
            expires_at=datetime.now(UTC) + timedelta(seconds=int(answer.expires_in)),
        )

    def token_info(self, access_token: str) -> dict[str, Any]:
        info = translate(lambda: self.sdk.oauth.access_tokens_api.get(access_token))
        return {
            "hub_id": info.hub_id,
            "user_id": info.user_id,
            "user": info.user,
            "hub_domain": info.hub_domain,
            "scopes": list(info.scopes or []),
            "app_id": info.app_id,
        }

    def is_super_admin(self, access_token: str, user_id: int) -> bool:
        """Whether a portal's user is a super admin (the user provisioning API, `settings.users.read`)."""
        sdk = HubSpot(access_token=access_token, host=self.settings.hubspot_api_base_url)
        return bool(translate(lambda: sdk.settings.users.users_api.get_by_id(str(user_id))).super_admin)

    def delete_refresh_token(self, refresh_token: str) -> None:
        translate(lambda: self.sdk.oauth.refresh_tokens_api.archive(refresh_token))


class HubSpotClient:
    """CRM calls for one portal with one access token; limited and counted through Redis."""

    def __init__(self, settings: Config, portal_id: int, access_token: str, limiter: RateLimiter | None = None) -> None:
        self.portal_id, self.limiter = portal_id, limiter
        self.host = settings.hubspot_api_base_url
        self.sdk = HubSpot(access_token=access_token, host=self.host)

    def _call(self, kind: str, call: Callable[[], T]) -> T:
        if self.limiter is not None:
            wait = self.limiter.acquire(f"hubspot:{self.portal_id}:{kind}", HUBSPOT_LIMITS[kind])
            if wait > 0:
                raise errors.RateLimited("hubspot", f"portal {self.portal_id} {kind} limit", retry_after=wait)
            self.limiter.count("hubspot", str(self.portal_id), kind)
        for attempt in range(TRANSIENT_RETRIES + 1):
            try:
                return translate(call)
            except errors.Transient:
                if attempt == TRANSIENT_RETRIES:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def get(
        self, object_type: str, object_id: str, properties: list[str] | None = None, id_property: str | None = None
    ) -> dict[str, Any]:
        record = self._call(
            "api",
            lambda: self.sdk.crm.objects.basic_api.get_by_id(
                object_type, object_id, properties=properties, id_property=id_property
            ),
        )
        return _plain(record)

    def create(self, object_type: str, properties: dict[str, str], associations: list | None = None) -> dict:
        from hubspot.crm.objects import SimplePublicObjectInputForCreate

        record = self._call(
            "api",
            lambda: self.sdk.crm.objects.basic_api.create(
                object_type,
                simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                    properties=properties, associations=associations or []
                ),
            ),
        )
        if record is None:  # the SDK's answer to a status other than 201
            raise errors.Transient("hubspot", f"create {object_type} answered without a record")
        return _plain(record)

    def update(self, object_type: str, object_id: str, properties: dict[str, str]) -> dict[str, Any]:
        from hubspot.crm.objects import SimplePublicObjectInput

        record = self._call(
            "api",
            lambda: self.sdk.crm.objects.basic_api.update(
                object_type, object_id, SimplePublicObjectInput(properties=properties)
            ),
        )
        return _plain(record)

    def archived_ids(self, object_type: str) -> Iterator[str]:
        """The ids of every archived record (HubSpot keeps them 90 days), 100 a page, by id."""
        after = None
        while True:
            page = self._call(
                "api",
                lambda a=after: self.sdk.crm.objects.basic_api.get_page(
                    object_type, limit=100, after=a, archived=True, properties=["hs_object_id"]
                ),
            )
            for record in page.results or []:
                yield str(record.id)
            if page.paging is None or page.paging.next is None:
                return
            after = page.paging.next.after

    def archive(self, object_type: str, object_id: str) -> None:
        """Archive (HubSpot's delete; restorable for 90 days). An id already gone is no error."""
        with contextlib.suppress(errors.NotFound):
            self._call("api", lambda: self.sdk.crm.objects.basic_api.archive(object_type, object_id))

    def batch_read(
        self, object_type: str, ids: list[str], properties: list[str], id_property: str | None = None
    ) -> list[dict[str, Any]]:
        """The records of `ids` that exist (archived or unknown ones are simply absent).

        `id_property` reads by a unique property instead (contacts: "email", matched without case).
        """
        from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        found = []
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            answer = self._call(
                "api",
                lambda c=chunk: self.sdk.crm.objects.batch_api.read(
                    object_type,
                    BatchReadInputSimplePublicObjectId(
                        inputs=[SimplePublicObjectId(id=i) for i in c],
                        properties=properties,
                        properties_with_history=[],
                        id_property=id_property,
                    ),
                ),
            )
            found += [_plain(r) for r in answer.results]
        return found

    def _association_results(self, from_type: str, to_type: str, ids: list[str]) -> Iterator[Any]:
        """v4 batch read of associations, 1,000 ids a call; a record with none is simply absent
        (HubSpot answers it as a per-input error). Only the first page of each record's
        associations is read (HubSpot pages past 500)."""
        from hubspot.crm.associations.v4 import (
            BatchInputPublicFetchAssociationsBatchRequest,
            PublicFetchAssociationsBatchRequest,
        )

        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            answer = self._call(
                "api",
                lambda c=chunk: self.sdk.crm.associations.v4.batch_api.get_page(
                    from_type,
                    to_type,
                    BatchInputPublicFetchAssociationsBatchRequest(
                        inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in c]
                    ),
                ),
            )
            yield from answer.results

    def primary_associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, str]:
        """For each of `ids`, its primary associated `to_type` record (the "Primary" label, type 1 for
        contact → company), or its only one when none is marked primary."""
        found: dict[str, str] = {}
        for result in self._association_results(from_type, to_type, ids):
            targets = list(result.to or [])
            primary = [
                t
                for t in targets
                if any((a.label or "").lower() == "primary" or a.type_id == 1 for a in t.association_types or [])
            ]
            chosen = primary[:1] or (targets if len(targets) == 1 else [])
            if chosen:
                found[str(result._from.id)] = str(chosen[0].to_object_id)
        return found

    def associated_ids(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """For each of `ids`, the ids of its associated `to_type` records."""
        return {
            str(result._from.id): [str(t.to_object_id) for t in result.to or []]
            for result in self._association_results(from_type, to_type, ids)
        }

    def company_currency(self) -> str | None:
        """The portal's company currency (`GET /account-info/v3/details`; the SDK has no wrapper for the
        account information API, so its generic request is used)."""
        return self.account_details().get("companyCurrency")

    def currencies(self) -> set[str]:
        """Every currency the portal has: its company currency and the additional ones."""
        details = self.account_details()
        found = {details.get("companyCurrency"), *(details.get("additionalCurrencies") or [])}
        return {str(code) for code in found if code}

    def account_details(self) -> dict[str, Any]:
        return self._call("api", lambda: self._raw("GET", "/account-info/v3/details"))

    def _raw(self, method: str, path: str) -> dict[str, Any]:
        response = self.sdk.api_request({"method": method, "path": path, "base_url": self.host})
        if response.status_code >= 400:
            raise _HttpFailure(response.status_code, response.text, response.headers)
        return response.json()

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """The default (unlabelled) association between two records; one already there is no error."""
        self._call(
            "api",
            lambda: self.sdk.crm.associations.v4.basic_api.create_default(from_type, from_id, to_type, to_id),
        )

    def unassociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Remove every association between two records; one already gone is no error."""
        with contextlib.suppress(errors.NotFound):
            self._call(
                "api", lambda: self.sdk.crm.associations.v4.basic_api.archive(from_type, from_id, to_type, to_id)
            )

    def ensure_unique_property(self, object_type: str, name: str, label: str, group: str) -> None:
        """Create our unique id property once (needs crm.schemas.<object>.write)."""
        self.ensure_property(object_type, name, label, group, unique=True)

    def ensure_property_group(self, object_type: str, name: str, label: str) -> None:
        """Create a property group of ours once, if it is not there (needs crm.schemas.<object>.write)."""
        from hubspot.crm.properties import PropertyGroupCreate

        try:
            self._call("api", lambda: self.sdk.crm.properties.groups_api.get_by_name(object_type, name))
        except errors.NotFound:
            with contextlib.suppress(errors.Duplicate):  # another worker made it meanwhile
                self._call(
                    "api",
                    lambda: self.sdk.crm.properties.groups_api.create(
                        object_type, PropertyGroupCreate(name=name, label=label, display_order=-1)
                    ),
                )

    def ensure_property(
        self, object_type: str, name: str, label: str, group: str, unique: bool = False, field_type: str = "text"
    ) -> None:
        """Create a string property of ours once, if it is not there (needs crm.schemas.<object>.write)."""
        from hubspot.crm.properties import PropertyCreate

        try:
            self._call("api", lambda: self.sdk.crm.properties.core_api.get_by_name(object_type, name))
        except errors.NotFound:
            with contextlib.suppress(errors.Duplicate):  # another worker made it meanwhile
                self._call(
                    "api",
                    lambda: self.sdk.crm.properties.core_api.create(
                        object_type,
                        PropertyCreate(
                            name=name,
                            label=label,
                            type="string",
                            field_type=field_type,
                            group_name=group,
                            has_unique_value=unique,
                        ),
                    ),
                )

    def upsert(self, object_type: str, id_property: str, id_value: str, properties: dict[str, str]) -> dict:
        """Create or update the record whose unique `id_property` is `id_value`: safe to repeat after a crash."""
        from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputUpsert, SimplePublicObjectBatchInputUpsert

        answer = self._call(
            "api",
            lambda: self.sdk.crm.objects.batch_api.upsert(
                object_type,
                BatchInputSimplePublicObjectBatchInputUpsert(
                    inputs=[
                        SimplePublicObjectBatchInputUpsert(id=id_value, id_property=id_property, properties=properties)
                    ]
                ),
            ),
        )
        if getattr(answer, "errors", None):
            error = answer.errors[0]
            raise _classify(
                "hubspot",
                409 if error.category == "CONFLICT" else 400,
                json.dumps({"message": error.message, "category": error.category}),
                None,
            )
        return _plain(answer.results[0])

    def batch_create_associated(
        self, object_type: str, inputs: list[dict[str, str]], to_id: str, association_type_id: int
    ) -> list[dict[str, Any]]:
        """Up to 100 records, each created associated with one record (a document's line items) in one call.
        HubSpot does not promise the answer's order: callers match the records by their values."""
        from hubspot.crm.objects import (
            BatchInputSimplePublicObjectBatchInputForCreate,
            SimplePublicObjectBatchInputForCreate,
        )

        association = {
            "to": {"id": to_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association_type_id}],
        }
        created: list[dict[str, Any]] = []
        for start in range(0, len(inputs), 100):
            chunk = inputs[start : start + 100]
            answer = self._call(
                "api",
                lambda c=chunk: self.sdk.crm.objects.batch_api.create(
                    object_type,
                    BatchInputSimplePublicObjectBatchInputForCreate(
                        inputs=[
                            SimplePublicObjectBatchInputForCreate(properties=properties, associations=[association])
                            for properties in c
                        ]
                    ),
                ),
            )
            created += [_plain(record) for record in answer.results]
        return created

    def batch_upsert(
        self, object_type: str, id_property: str, inputs: dict[str, dict[str, str]]
    ) -> dict[str, dict | errors.ApiError]:
        """Up to 100 upserts on our unique property: {id value: the record, or that input's error}."""
        from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputUpsert, SimplePublicObjectBatchInputUpsert

        answer = self._call(
            "api",
            lambda: self.sdk.crm.objects.batch_api.upsert(
                object_type,
                BatchInputSimplePublicObjectBatchInputUpsert(
                    inputs=[
                        SimplePublicObjectBatchInputUpsert(id=value, id_property=id_property, properties=properties)
                        for value, properties in inputs.items()
                    ]
                ),
            ),
        )
        results: dict[str, dict | errors.ApiError] = {}
        for record in answer.results:
            results[str(record.properties.get(id_property))] = _plain(record)
        results.update(_input_errors(answer, {"CONFLICT": 409}))
        return results

    def batch_update(self, object_type: str, updates: dict[str, dict[str, str]]) -> dict[str, dict | errors.ApiError]:
        """Up to 100 property updates in one call: {id: the record, or that input's error}."""
        from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

        answer = self._call(
            "api",
            lambda: self.sdk.crm.objects.batch_api.update(
                object_type,
                BatchInputSimplePublicObjectBatchInput(
                    inputs=[SimplePublicObjectBatchInput(id=i, properties=p) for i, p in updates.items()]
                ),
            ),
        )
        results: dict[str, dict | errors.ApiError] = {r.id: _plain(r) for r in answer.results}
        results.update(_input_errors(answer, {"OBJECT_NOT_FOUND": 404}))
        return results

    def search(self, object_type: str, request: dict[str, Any]) -> dict[str, Any]:
        from hubspot.crm.objects import PublicObjectSearchRequest

        page = self._call(
            "search",
            lambda: self.sdk.crm.objects.search_api.do_search(
                object_type, public_object_search_request=PublicObjectSearchRequest(**request)
            ),
        )
        return {
            "total": page.total,
            "results": [_plain(r) for r in page.results],
            "after": page.paging.next.after if page.paging and page.paging.next else None,
        }


class _HttpFailure(Exception):
    """A failed generic request, shaped as the SDK's exceptions are (status, body, headers) for `translate`."""

    def __init__(self, status: int, body: str, headers) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.headers = status, body, headers


def _input_errors(answer, statuses: dict[str, int]) -> dict[str, errors.ApiError]:
    """A batch's per-input errors (HubSpot's 207), as errors keyed by the input ids each names;
    `statuses` gives the HTTP status a category stands for (anything else: 400)."""
    found: dict[str, errors.ApiError] = {}
    for error in getattr(answer, "errors", None) or []:
        failed = _classify(
            "hubspot",
            statuses.get(error.category, 400),
            json.dumps({"message": error.message, "category": error.category}),
            None,
        )
        for value in (error.context or {}).get("ids", []):
            found[str(value)] = failed
    return found


def _plain(record) -> dict[str, Any]:
    return {
        "id": record.id,
        "properties": dict(record.properties or {}),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "archived": bool(record.archived),
    }
