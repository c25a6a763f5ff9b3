"""Account settings an app reads: the user provisioning API's read (`GET /settings/v3/users/{userId}`:
who a portal's user is, and whether they are a super admin) and the account information API's
details (`GET /account-info/v3/details`: the portal's time zone and company currency)."""

from __future__ import annotations

from flask import Blueprint, g, request

from emulators.hubspot import assumptions
from emulators.hubspot.errors import json_response, not_found, validation
from emulators.hubspot.routes_crm import require_scopes, state

bp = Blueprint("settings", __name__)


@bp.get("/settings/v3/users/<user_ref>")
def read_user(user_ref: str):
    require_scopes("settings.users.read")
    id_property = request.args.get("idProperty", "USER_ID")
    if id_property not in ("USER_ID", "EMAIL"):
        raise validation("idProperty must be USER_ID or EMAIL", context={"idProperty": [id_property]})
    with state().lock:
        account = state().accounts[g.token.hub_id]
        for user in account.users.values():
            if (str(user.user_id) if id_property == "USER_ID" else user.email.lower()) == user_ref.lower():
                return json_response(
                    {
                        "id": str(user.user_id),
                        "email": user.email,
                        "roleIds": [],
                        "superAdmin": user.super_admin,
                        "sendWelcomeEmail": False,
                    }
                )
    raise not_found(f"No user {user_ref} in this account", userId=[user_ref])


@bp.get("/account-info/v3/details")
def account_details():
    """Any valid token of the portal may read it (assumptions.ACCOUNT_DETAILS_SCOPES)."""
    with state().lock:
        account = state().accounts[g.token.hub_id]
        return json_response(
            {
                "portalId": account.hub_id,
                "accountType": "STANDARD",
                "timeZone": account.time_zone,
                "companyCurrency": account.currency,
                "additionalCurrencies": [],
                "utcOffset": assumptions.ACCOUNT_UTC_OFFSET,
                "utcOffsetMilliseconds": 0,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )
