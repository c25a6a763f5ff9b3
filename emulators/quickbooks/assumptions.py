"""Every choice this emulator makes where QuickBooks Online's behaviour is not documented.

`../shared/reference/quickbooks/NOTES.md` marks these UNVERIFIED (or says
nothing). One constant per choice, with the reason; emulators/README.md lists them.
"""

# --- Names and entities -------------------------------------------------------------------

# DisplayName uniqueness (Customer, Vendor, Employee) and Item/Account name uniqueness
# compare trimmed, case-insensitive names.
NAMES_CASE_INSENSITIVE = True

# A name containing ":", a tab or a newline is refused with 6000 and this detail
# (the rule is documented, the error wording is not).
BAD_NAME_DETAIL = "Business Validation Error: Names cannot contain a colon (:), a tab or a new line."

# Item duplicate-name detail (NOTES: wording unverified).
ITEM_DUPLICATE_DETAIL = (
    "The name supplied already exists. : Another product or service is already using this "
    "name. Please use a different name."
)
ACCOUNT_DUPLICATE_DETAIL = (
    "The name supplied already exists. : Another account is already using this name. Please use a different name."
)

# Inactive names keep their DisplayName (no " (deleted)" suffix through the API).
INACTIVE_RENAMED = False

# Deactivating a customer with a non-zero balance: 6000 with the text QBO users report.
HAS_BALANCE_MESSAGE = "Delete List Has Balance Error"
HAS_BALANCE_DETAIL = (
    "The entity you are trying to delete has an open balance. : This customer cannot be deleted "
    "because it has a non-zero balance"
)

# A reference to an Id that does not exist is 2500 Invalid Reference Id; to an inactive
# one, 610 Object Not Found (NOTES gives both codes for "bad or inactive refs").
UNKNOWN_REF_CODE = "2500"
INACTIVE_REF_CODE = "610"

# Writes to read-only entities (TaxCode, CompanyInfo create, …) are 500-range
# "Unsupported Operation" (python-quickbooks raises UnsupportedException).
UNSUPPORTED_CODE = "500"

# --- Transactions ---------------------------------------------------------------------------

# Invoice, SalesReceipt and CreditMemo share one DocNumber sequence, from 1001.
FIRST_DOC_NUMBER = 1001

# With CustomTxnNumbers off, a DocNumber sent anyway is used as given (no duplicate check);
# with it on and none sent, DocNumber stays absent. "" counts as none sent.
DOCNUMBER_EMPTY_IS_ABSENT = True

# Due date when neither the transaction nor the customer names a term: TxnDate + 30 days
# (the documented create response shows exactly that).
DEFAULT_DUE_DAYS = 30

# Line Amount must equal Qty × UnitPrice (to the cent) when both are given: 6070 with this text.
# "Given" means present and non-zero: python-quickbooks' SalesItemLineDetail sends `Qty: 0` and
# `UnitPrice: 0` when only Amount was set, and QBO accepts such a line with the amount standing
# (invoices, sales receipts and credit memos alike). A zero Qty or UnitPrice is therefore treated as
# absent and left out of the stored line (QBO returns only properties that have values); a line of
# genuinely zero price has Amount 0, which needs neither.
ZERO_QTY_AND_PRICE_ARE_UNSET = True
AMOUNT_MISMATCH_CODE = "6070"
AMOUNT_MISMATCH_MESSAGE = "Amount calculation incorrect in the request"

# Non-US line without a TaxCodeRef: 6000, with the country's documented detail; countries
# without a documented text get the older generic one.
TAX_CODE_DETAILS = {
    "CA": "Business Validation Error: Make sure all your transactions have a GST/HST rate before you save.",
    "GB": "Business Validation Error: Make sure all your transactions have a VAT rate before you save.",
}
TAX_CODE_DETAIL_DEFAULT = (
    "Business Validation Error: One or more transaction lines do not have a tax code "
    "associated with it. Please assign a tax code for those lines"
)

# A payment applied to an invoice or credit memo, changed, voided or deleted updates that
# document too: its Balance and LinkedTxn change, and so do its SyncToken and LastUpdatedTime
# (seen in the wild: "QuickBooks bumps the Invoice token when a Payment is applied"), so change
# data capture lists it. No webhook is sent for the document itself, only for the payment.
PAYMENT_UPDATES_DOCUMENT = True

# Sales tax: the emulator has no tax rates to compute with. A sales form's
# `TxnTaxDetail.TotalTax`, when sent, is kept (as a US company without automated sales tax may
# override the computed tax) and added to TotalAmt; otherwise the tax is 0.
TAX_AS_SENT = True

# Deleting or voiding an invoice that payments are applied to is refused (6000): QBO
# requires unlinking first.
LINKED_TXN_DETAIL = "Business Validation Error: This transaction is linked to a payment. Unlink it first."

# A payment line may not apply more than the invoice's open balance, and the applied
# total may not exceed TotalAmt (6000).
OVERPAYMENT_DETAIL = "Business Validation Error: The payment amount is more than the open balance of the invoice."

# `include=invoiceLink` on an invoice read or query adds `InvoiceLink` only when the invoice allows
# online payment (AllowOnlineCreditCardPayment or AllowOnlineACHPayment true) and has a
# BillEmail.Address, as Intuit documents ("generated only for invoices with online payment enabled
# and having a valid customer email address"); otherwise the field is absent. The link is stable per
# invoice and shaped like the links QBO sends; the company's QuickBooks Payments status is not modelled.
INVOICE_LINK_PAYMENT_FLAGS = ("AllowOnlineCreditCardPayment", "AllowOnlineACHPayment")
INVOICE_LINK_FORMAT = "https://connect.intuit.com/portal/app/CommerceNetwork/view/scs-v1-{token}?locale=EN_US"

# Sales-form custom field values longer than 31 characters are refused with 2050.
CUSTOM_FIELD_MAX = 31

# Void prepends "Voided" to PrivateNote ("Voided - <old note>" when there was one).
VOID_NOTE_PREFIX = "Voided"

# --- Queries, CDC, batch ----------------------------------------------------------------------

# String comparisons (=, IN, LIKE) in queries are case-insensitive.
QUERY_CASE_INSENSITIVE = True
# `totalCount` appears only in COUNT(*) answers.
QUERY_TOTALCOUNT_ONLY_FOR_COUNT = True
# MAXRESULTS over 1000 is a 4001 Invalid query.
MAX_RESULTS_LIMIT = 1000

# CDC: a changedSince older than 30 days is a 400 with code 4001 and the documented text;
# a naive changedSince (what python-quickbooks sends) is the company's local time; more
# than 1000 changed objects are cut to the 1000 oldest changes (split the window).
CDC_WINDOW_DAYS = 30
CDC_MAX_OBJECTS = 1000
CDC_TOO_OLD_CODE = "4001"

# More than 30 batch items: 400 with code 6000 saying so.
BATCH_MAX_ITEMS = 30

# --- Limits -----------------------------------------------------------------------------------

# A batch request counts as one request toward 500/min and 10/s, and separately toward
# the 40 batch requests per minute. Limits are per realm and app (client id).
BATCH_COUNTS_AS_ONE = True
REQUESTS_PER_MINUTE = 500
REQUESTS_PER_SECOND = 10
CONCURRENT_REQUESTS = 10
BATCHES_PER_MINUTE = 40

# A token used on another realm's URL: 403 ApplicationAuthorizationFailed (3100).
WRONG_REALM_STATUS = 403

# --- OAuth ------------------------------------------------------------------------------------

# The app has production keys and development keys. A sandbox company authorized with the
# production keys, or a production company with the development keys, comes back to the
# redirect URI with error=access_denied.
SANDBOX_WITH_PRODUCTION_KEYS_ERROR = "access_denied"

# Refresh-token rotation. Intuit documents that the refresh token's value changes about every
# 24 hours and that a client must always keep the latest value it was given; until then a refresh
# hands back the same value (its rolling ~100 days restarting). So: a refresh token younger than
# REFRESH_ROTATION_SECONDS is returned unchanged; an older one is replaced by a new value.
REFRESH_ROTATION_SECONDS = 24 * 3600
# How long a rotated-out value keeps working is not documented ("always use the latest"). We keep
# it working for one more rotation period, the window in which clients that refreshed concurrently
# could only have been handed it. Tests that need a lost rotation to show set both to 0 through
# POST /_emulator/config {"refreshGraceSeconds": 0, "refreshRotationSeconds": 0}.
REFRESH_GRACE_SECONDS = 24 * 3600
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8_726_400  # ~101 days, rolling
AUTHORIZATION_CODE_SECONDS = 300

# --- Webhooks -------------------------------------------------------------------------------------

# Retry schedule after a failed delivery (non-200 or no answer within 3 s): the documented
# 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h; we stop after 24 h.
WEBHOOK_RETRY_DELAYS = (10, 20, 30, 300, 1200, 7200, 14400, 21600, 21600, 21600)
WEBHOOK_TIMEOUT_SECONDS = 3.0
# Events are grouped into deliveries of ≤ 100, realms mixed, in the order they happened.
WEBHOOK_BATCH = 100

# A sales form's lines: a line sent with its `Id` keeps it (a full update that keeps a line keeps its
# Id); a line sent without one gets the next number above the highest Id the document has or had
# before this update, so a line added in the update that removes another never takes its Id. The samples show Ids "1",
# "2", … in document order for a new form; how QBO numbers lines added later is not documented.
LINE_IDS = "kept when sent; new lines numbered above the highest Id, old or new"
