"""Every choice this emulator makes where HubSpot's behaviour is not documented.

`../shared/reference/hubspot/NOTES.md` marks these UNVERIFIED (or says nothing).
Each constant is one choice, with the reason; `emulators/README.md` lists them.
When real HubSpot turns out to differ, change it here, and the tests that
depend on it will say what else moves.
"""

# --- Objects ---------------------------------------------------------------

# A duplicate unique value *inside one batch create* (two inputs with the same
# email): HubSpot documents a 409 for a clash with an existing record, but not
# this. Inputs are applied in order, so the first is created and the later ones
# clash with it. With an objectWriteTraceId on every input (the documented way
# to get per-input errors) they come back as 207 errors (category CONFLICT);
# without, the whole batch is refused with that 409 and nothing is created,
# as for any invalid input of a batch create. Batch upsert and update always
# answer per input (207).
DUPLICATE_IN_BATCH = "first_wins"

# Products: the docs' table lists "hs_sku, hs_folder, price, name, description"
# as required. Real portals create products with a name alone; we require only
# `name`, because requiring a folder would refuse every product in practice.
PRODUCT_REQUIRED_PROPERTIES = ("name",)

# Datetime properties are stored and returned as ISO-8601 with milliseconds and
# `Z` (what system dates look like in every documented response), whether they
# were written as ISO or as epoch milliseconds. Date properties return YYYY-MM-DD.
DATETIME_OUTPUT = "iso_ms_z"

# Numbers are returned as they were written (no reformatting of "6000.00").
NUMBER_OUTPUT = "as_written"

# Without a sort, search returns records in ascending id (creation) order, which
# is what the docs say for free-text queries; list endpoints page by id likewise.
DEFAULT_SEARCH_ORDER = "id_ascending"

# CONTAINS_TOKEN: the value is split into tokens on whitespace and punctuation
# other than `@ . - _`; a `*` in the filter value is a wildcard over the whole
# value (so "*@hubspot.com" matches an email ending in it). Case-insensitive.
CONTAINS_TOKEN_SPLIT = r"[\s,;:!?()\[\]{}\"'/]+"

# Search paging: `paging.next` is omitted when the next offset would reach the
# 10,000-result cap; asking for an offset at or past it is a 400.
SEARCH_RESULT_CAP = 10_000

# Error messages for authentication (their categories are documented, the
# wording here is what HubSpot is widely reported to send).
EXPIRED_TOKEN_MESSAGE = "The OAuth token used to make this call expired {seconds} second(s) ago."
INVALID_TOKEN_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)

# Writing a read-only or unknown property, or a value of the wrong type, is a
# 400 VALIDATION_ERROR whose message embeds the JSON list of failures, in the
# shape of the documented multi-status example (error codes READ_ONLY_VALUE,
# PROPERTY_DOESNT_EXIST, INVALID_DECIMAL, INVALID_OPTION, INVALID_EMAIL, …).
PROPERTY_ERROR_FORMAT = "Property values were not valid: {json}"

# Malformed input (a batch input that is not an object, an idProperty that is not a string, a
# search filter group that is not an object, a non-integer `limit`, …) is refused before any
# write with 400 VALIDATION_ERROR, as HubSpot's body deserialisation refuses it. The message starts
# with HubSpot's "Invalid input JSON" and names the field (HubSpot names line and column instead,
# which a dict-based emulator cannot know). A batch with one mistyped input is refused whole.
INVALID_INPUT_PREFIX = "Invalid input JSON"

# GET /settings/v3/users/{userId} answers `superAdmin` as HubSpot does; the "App Marketplace access"
# permission is not visible there (HubSpot exposes permissions only through a portal's own roles), so
# `roleIds` is always empty.

# POST /crm/v4/associations/{from}/{to}/batch/associate/default with some inputs failing answers
# 200 with `errors` and `numErrors` in the body: the spec documents only a 200 there, and SDK v12
# deserialises only a 200 (a 207 would make it return None). Other batch writes answer 207.
DEFAULT_BATCH_PARTIAL_STATUS = 200

# A merged contact or company id keeps answering reads with the surviving record
# (whose `id` is the survivor's); the survivor lists the merged ids in
# `hs_merged_object_ids` (semicolon-separated). Writes to a merged id go to the survivor.
MERGED_ID_RESOLVES_TO_SURVIVOR = True

# --- Invoices and payments -------------------------------------------------

# A commerce payment with hs_latest_status "succeeded" associated with an invoice
# (type 542) counts toward the invoice: hs_amount_paid rises, hs_balance_due
# falls, and an open invoice whose balance reaches zero becomes "paid". The docs
# only say that such payments are created "to mark them as paid".
PAYMENT_MARKS_INVOICE_PAID = True

# The reverse: a paid invoice whose payments no longer cover it (one deleted, refunded or
# failed) is open again. "paid" is derived from payments, never set or kept by hand.
PAID_REOPENS = True

# hs_invoice_status moves only along draft → open → (paid | voided); "paid"
# cannot be set by PATCH (the docs: "Recording payments manually is not
# possible via the API"); voided is final, and paid follows the payments (PAID_REOPENS).
INVOICE_STATUS_TRANSITIONS = {
    "draft": {"draft", "open", "voided"},
    "open": {"open", "voided"},
    "paid": {"paid"},
    "voided": {"voided"},
}

# Only draft invoices can be deleted; the docs say open ones can be "if enabled
# in settings", which is the account setting `allowOpenInvoiceDeletion` (off).
DELETABLE_INVOICE_STATUSES = ("draft",)

# A non-billable invoice (hs_invoice_billable = "false") is not validated when
# it is opened: no contact or line item is required.
NON_BILLABLE_SKIPS_VALIDATION = True

# hs_subtotal is the sum of the associated line items' `amount` (quantity × price − discount),
# hs_amount_billed that priced by PRICING_ORDER; invoice numbers are "INV-" and a sequence from 1001.
INVOICE_NUMBER_PREFIX = "INV-"
FIRST_INVOICE_NUMBER = 1001

# Discounts, fees and taxes associated with an invoice (411/413/415) change its amount billed
# as the discounts guide says they price a quote: discounts first, then fees, then taxes. Each
# is FIXED (hs_value in money) or PERCENT (of the amount so far), rounded half-up to the cent,
# in hs_sort_order; hs_subtotal stays the line items' sum.
PRICING_ORDER = ("discounts", "fees", "taxes")

# Each object type starts with one property group, "<singular>information"; a property created in
# (or moved to) a group that does not exist is a 400 VALIDATION_ERROR.
DEFAULT_PROPERTY_GROUP_SUFFIX = "information"

# A line item belongs to one parent: associating it with a second invoice is a 400.
LINE_ITEM_SINGLE_PARENT = True

# Commerce payments in an account without HubSpot Payments or Stripe: 403 with
# category MISSING_SCOPES-like wording is not documented; we answer 400
# VALIDATION_ERROR saying payment processing must be set up.
PAYMENTS_NOT_SET_UP_STATUS = 400

# --- OAuth -----------------------------------------------------------------

# Refresh tokens do not rotate and do not expire until deleted or the app is
# uninstalled; each refresh issues a new access token of 1800 s.
REFRESH_TOKEN_ROTATES = False
ACCESS_TOKEN_SECONDS = 1800
AUTHORIZATION_CODE_SECONDS = 600

# A user without the right to install apps (neither super admin nor App
# Marketplace access) in a portal where the app is not yet installed is sent
# back with error=access_denied. Where the app is installed, any user may sign in.
NO_INSTALL_RIGHTS_ERROR = "access_denied"

# OAuth errors are 400 with {"status": "BAD_AUTH_CODE" | "BAD_REFRESH_TOKEN" |
# "BAD_CLIENT_ID" | "BAD_REDIRECT_URI" | "BAD_GRANT_TYPE", "message", "correlationId"}.
OAUTH_ERROR_STATUS = 400

# --- Limits ------------------------------------------------------------------

# API 429 responses carry no Retry-After header (NOTES: plan for its absence).
RATE_LIMIT_RETRY_AFTER = False

# The documented 429 body has `errorType: RATE_LIMIT` and no `category`, which the
# specs' Error schema requires; we send both, with the category widely seen in the wild.
RATE_LIMIT_CATEGORY = "RATE_LIMITS"

# The search limit's policyName is not documented (the others are DAILY and
# TEN_SECONDLY_ROLLING); we call it SECONDLY.
SEARCH_RATE_LIMIT_POLICY = "SECONDLY"

# The deprecated secondly headers are not sent; the interval ones are.
SEND_SECONDLY_HEADERS = False

# --- Webhooks and HubSpot calling the app (part 2) ------------------------------------------

# Webhook retries: "up to 10 retries spread over 24 h, with randomized delays". We
# use this fixed schedule (seconds after each failed attempt; 85,500 s in all) so
# that tests can move the clock to exactly the next attempt.
WEBHOOK_RETRY_DELAYS = (60, 300, 900, 1800, 3600, 5400, 7200, 14400, 21600, 30240)

# changeSource / sourceId: writes made with an app's OAuth token are INTEGRATION with
# the app id as sourceId; edits made through the control API stand for a user in
# HubSpot's UI: CRM_UI with "userId:<super admin>". Values HubSpot computes itself
# (an invoice that becomes paid) carry the source of the write that caused them.
API_CHANGE_SOURCE = "INTEGRATION"
UI_CHANGE_SOURCE = "CRM_UI"

# A record created with properties also produces a propertyChange event for each
# subscribed property that it was created with, after its creation event.
PROPERTY_CHANGES_ON_CREATION = True

# hubspot.fetch: besides `appId` (documented), the emulator appends portalId, userId,
# userEmail, associatedObjectId and associatedObjectType, which the card's code is
# expected to send (NOTES §5.2 marks HubSpot appending them as UNVERIFIED).
CARD_FETCH_TIMEOUT_SECONDS = 15.0

# Workflow actions: 5xx and connection failures are retried with exponential backoff
# from 60 s, doubling, capped at 8 h, until 3 days after the first attempt; 429 waits
# Retry-After (seconds) or 60 s. A BLOCK without hs_expiration_duration waits a week.
ACTION_RETRY_FIRST_DELAY = 60
ACTION_RETRY_MAX_DELAY = 8 * 3600
ACTION_RETRY_WINDOW = 3 * 86_400
ACTION_BLOCK_DEFAULT_SECONDS = 7 * 86_400
ACTION_TIMEOUT_SECONDS = 20.0

# App events (timeline for new apps): POST /integrators/timeline/v4/events answers
# 201 with the stored occurrence; `eventTypeName` is the event type's uid or its
# fully qualified name "ae<appId>_<uid>"; properties are checked against the type.
APP_EVENT_CREATE_STATUS = 201

# The legacy timeline v3 API, for an app that has no v1/v3 event templates: every
# event or template lookup is a 404 OBJECT_NOT_FOUND naming the template id.
LEGACY_TIMELINE_STATUS = 404

# Account information (`GET /account-info/v3/details`): any valid access token of the portal may read
# it (the docs list no scope for it); `utcOffset` is always "+00:00" (time zones are not modelled
# beyond their name); `companyCurrency` is the account's currency (control API `currency`).
ACCOUNT_DETAILS_SCOPES = ()
ACCOUNT_UTC_OFFSET = "+00:00"
