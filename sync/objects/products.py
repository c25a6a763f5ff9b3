"""Products ⇄ items ("Products and Services"), matched by SKU.

HubSpot products sync with QBO items of type Service, NonInventory and Inventory; Category and
Group (bundle) items are left out, saying why. Matching is on the SKU (`hs_sku` ⇄ `Sku`, trimmed,
without case, as QBO compares it); with the option `match_by_name`, records without a SKU match by
their exact (trimmed) name. A SKU two records share on one side fails both ("duplicate SKU").

Money is exact: prices and costs are canonical decimal text ("10.5"), never floats; QBO is sent a
`Decimal`. The price and cost sync only when HubSpot's company currency is the QBO company's home
currency; otherwise products sync without them, and each record's activity says why.

An item created from HubSpot needs accounts: the income account of the sync's options (default:
the company's first active income account), and for an item with a cost an expense account. A
product typed `inventory` becomes a NonInventory item (HubSpot has no quantity on hand) unless the
option `allow_inventory` is on; then it is an Inventory item with quantity 0 from the set-up date,
which also needs an asset account. The type is set when a record is created on the other side and
not merged afterwards: QBO does not let an item change type freely.

Names: QBO refuses ":" (its sub-item separator), tabs and newlines in names, and allows 100
characters; the canonical name is the cleaned one, so both sides agree and nothing echoes. A
sub-item keeps its parent in QBO; HubSpot shows the item's own name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sync.clients import errors
from sync.engine import HUBSPOT, QUICKBOOKS, Filter, Record, SyncRules
from sync.money import money
from sync.objects.base import ObjectType, RunContext, blank_to_none, quoted
from sync.objects.contacts import clean_name

NAME_LIMIT = 100  # QBO's
SYNCED_TYPES = {"Service": "service", "NonInventory": "non_inventory", "Inventory": "inventory"}
QBO_TYPES = {value: key for key, value in SYNCED_TYPES.items()}
MONEY_FIELDS = ("price", "cost")
ITEM_TYPES_FILTER = "items_of_synced_types"
PURCHASE_DESCRIPTION_PROPERTY = "ledgersync_purchase_description"


def item_name(text: Any) -> str | None:
    """A name as QBO accepts it for an item: ":" and control characters replaced, at most 100 characters."""
    if text in (None, ""):
        return None
    return clean_name(str(text))[:NAME_LIMIT] or None


class Products(ObjectType):
    name = "products"
    hubspot_object = "products"
    qbo_entity = "Item"
    id_property = "ledgersync_qbo_item_id"
    id_property_label = "QuickBooks item id (Ledgersync)"
    id_property_group = "productinformation"
    hubspot_properties = {
        "name": "name",
        "description": "description",
        "price": "price",
        "sku": "hs_sku",
        "cost": "hs_cost_of_goods_sold",
        "purchase_description": PURCHASE_DESCRIPTION_PROPERTY,
        "type": "hs_product_type",
    }
    default_fields = ("name", "description", "price", "sku", "cost", "purchase_description")
    create_only_fields = ("type",)
    key_required = True
    key_missing_reason = (
        "it has no SKU, so it cannot be matched safely (turn on matching by name to sync records without one)"
    )
    duplicate_key = (
        "duplicate SKU",
        "A SKU must name one product and one item: change the SKU of one of them (or merge them), then retry.",
    )
    event_types = {"products": HUBSPOT, "item": QUICKBOOKS}
    filter_labels = {ITEM_TYPES_FILTER: "items of type Service, NonInventory or Inventory"}
    advice = {
        "duplicate item name": (
            "QuickBooks requires item names to be unique, and another item already has this one. Rename one of"
            " them, or match by SKU only so that the two stay apart."
        ),
        "account inactive": (
            "The account this item books to is inactive in QuickBooks. Make it active again, or choose another"
            " income account in the product sync's settings."
        ),
        "refused by quickbooks": (
            "QuickBooks refused the item: check the accounts in the product sync's settings (an income account;"
            " for items with a cost an expense account; for inventory an asset account)."
        ),
    }
    qbo_delete_body = {"Active": False}  # QBO items cannot be deleted, only made inactive
    recommended_direction = "qbo_to_hubspot"  # HubSpot's own integration: QBO → HubSpot, all products and services
    checks_with_quickbooks = True
    extra_hubspot_properties = ((PURCHASE_DESCRIPTION_PROPERTY, "Purchase description (QuickBooks)", "textarea"),)

    # --- matching ---------------------------------------------------------------------------------------------

    def natural_key_for(self, options: Mapping[str, Any]) -> Callable[[Record], str | None]:
        by_name = bool(options.get("match_by_name"))

        def key(record: Record) -> str | None:
            sku = (record.fields.get("sku") or "").strip()
            if sku:
                return "sku:" + sku.lower()
            name = (record.fields.get("name") or "").strip()
            return "name:" + name if by_name and name else None

        return key

    def quickbooks_key_queries(self, keys: list[str]) -> list[str]:
        skus = [k[4:] for k in keys if k.startswith("sku:")]
        names = [k[5:] for k in keys if k.startswith("name:")]
        base = "select * from Item where Active in (true, false) and"
        return [
            *([f"{base} Sku in ({quoted(skus)})"] if skus else []),  # QBO compares without case (emulator assumption)
            *([f"{base} Name in ({quoted(names)})"] if names else []),
        ]

    def hubspot_key_search(self, keys: list[str]) -> list[dict]:
        skus = [k[4:] for k in keys if k.startswith("sku:")]
        names = [k[5:] for k in keys if k.startswith("name:")]
        groups = []
        if skus:
            groups.append({"filters": [{"propertyName": "hs_sku", "operator": "IN", "values": skus}]})
        if names:
            groups.append({"filters": [{"propertyName": "name", "operator": "IN", "values": names}]})
        return groups

    def sync_filters(self, stored: Mapping[str, str] | None) -> dict[str, Filter]:
        # Always: Category and Group items never start syncing (HubSpot products have no such kinds).
        return {QUICKBOOKS: Filter(self.filter_labels[ITEM_TYPES_FILTER], lambda r: r.fields.get("type") in QBO_TYPES)}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        for name in ("income_account_id", "expense_account_id", "asset_account_id"):
            if options.get(name) is not None and not str(options[name]).isdigit():
                raise ValueError(f"{name} is a QuickBooks account id (digits)")
        return options

    def check_with_quickbooks(self, qbo, options: dict[str, Any], set_up_at) -> dict[str, Any]:
        """The accounts items are created with: the income account (default: the first active one) must
        be an active income account; with `allow_inventory`, an asset and an expense account too."""
        options = dict(options)
        if not options.get("income_account_id"):
            options["income_account_id"] = first_account(qbo, "Income")
            if options["income_account_id"] is None:
                raise ValueError("the QuickBooks company has no active income account: items cannot be created")
        check_account(qbo, options["income_account_id"], ("Income", "Other Income"), "income account")
        # the expense account of items with a cost, chosen once here rather than looked up every run
        options["expense_account_id"] = options.get("expense_account_id") or first_account(qbo, "Cost of Goods Sold")
        if options.get("expense_account_id"):
            check_account(qbo, options["expense_account_id"], ("Cost of Goods Sold", "Expense"), "expense account")
        if options.get("allow_inventory"):
            options["asset_account_id"] = options.get("asset_account_id") or first_account(
                qbo, "Other Current Asset", "Inventory"
            )
            if not options["expense_account_id"] or not options["asset_account_id"]:
                raise ValueError(
                    "inventory items need a Cost of Goods Sold account and an inventory asset (Other Current Asset)"
                    " account, and the QuickBooks company lacks one: create them, or leave inventory off"
                )
            check_account(qbo, options["asset_account_id"], ("Other Current Asset",), "inventory asset account")
            options["inventory_start_date"] = set_up_at.date().isoformat()
        return options

    def find_lost_create(self, qbo, body: Mapping[str, Any]) -> dict | None:
        """Item names are unique in QBO: an item of that name may be our lost create (a batch carries no
        request id per item, so resending would make a second one)."""
        where = f"Name = {quoted([body['Name']])} and Active in (true, false)"
        found = qbo.query(f"select * from Item where {where}").get("Item", [])  # noqa: S608
        return found[0] if found else None

    def create_note(self, changes: Mapping[str, Any], qbo_body: Mapping[str, Any] | None) -> str | None:
        if qbo_body and changes.get("type") == "inventory" and qbo_body.get("Type") == "NonInventory":
            return "an inventory product becomes a NonInventory item: HubSpot has no quantity on hand"
        return None

    def failure_category(self, error) -> str | None:
        if isinstance(error, errors.Duplicate) and error.code == "6240":
            return "duplicate item name"
        if error.code == "610" and "inactive" in (error.detail or "") + error.message:
            return "account inactive"  # an item refers to an account, and only the accounts can be inactive here
        return None

    # --- records ----------------------------------------------------------------------------------------------

    def from_hubspot(self, raw: dict, extra: Mapping[str, Any] | None = None) -> Record:
        record = super().from_hubspot(raw, extra)
        fields = dict(record.fields)
        fields["name"] = item_name(fields["name"])
        for name in MONEY_FIELDS:
            fields[name] = money(fields[name])
        fields["sku"] = blank_to_none((fields["sku"] or "").strip())
        return replace(record, fields=fields)

    def from_quickbooks(self, item: dict) -> Record:
        if item.get("status") == "Deleted":
            return Record(QUICKBOOKS, str(item["Id"]), {}, deleted=True)
        fields = {
            "name": item_name(item.get("Name")),
            "description": blank_to_none(item.get("Description")),
            "price": money(item.get("UnitPrice")),
            "sku": blank_to_none((item.get("Sku") or "").strip()),
            "cost": money(item.get("PurchaseCost")),
            "purchase_description": blank_to_none(item.get("PurchaseDesc")),
            "type": SYNCED_TYPES.get(item.get("Type"), item.get("Type")),
            "parent": (item.get("ParentRef") or {}).get("name") if item.get("SubItem") else None,
        }
        # An inactive item is QBO's "deleted" (items cannot be deleted).
        return Record(QUICKBOOKS, str(item["Id"]), fields, deleted=item.get("Active") is False)

    def to_quickbooks(
        self, changes: Mapping[str, Any], merged: Mapping[str, Any], creating: bool, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        simple = {"name": "Name", "description": "Description", "sku": "Sku", "purchase_description": "PurchaseDesc"}
        for name, key in simple.items():
            if name in changes:
                body[key] = changes[name] or ""
        for name, key in (("price", "UnitPrice"), ("cost", "PurchaseCost")):
            if name in changes:
                body[key] = Decimal(changes[name]) if changes[name] is not None else Decimal(0)
        if creating:
            body.update(_new_item_accounts(merged, changes, options))
        return body

    # --- a run --------------------------------------------------------------------------------------------------

    def prepare(self, context: RunContext, rules: SyncRules) -> SyncRules:
        """The default income account (the first active one) for items created from HubSpot, and the
        currency check: prices and costs sync only in one currency."""
        options = dict(context.options)
        for option, account_type in (("income_account_id", "Income"), ("expense_account_id", "Cost of Goods Sold")):
            if not options.get(option):
                options[option] = first_account(context.qbo, account_type)
        context.options = options
        try:
            portal_currency = context.hubspot.company_currency()
        except (errors.RateLimited, errors.Transient, errors.NeedsReconnect):
            raise
        except errors.ApiError as error:  # never guess a currency: prices wait until it can be read
            context.notes.append(f"price and cost not synced: HubSpot's company currency could not be read ({error})")
            return replace(rules, fields=tuple(f for f in rules.fields if f not in MONEY_FIELDS))
        if portal_currency and context.home_currency and portal_currency != context.home_currency:
            context.notes.append(
                f"price and cost not synced: HubSpot's company currency is {portal_currency} and QuickBooks'"
                f" home currency is {context.home_currency}"
            )
            return replace(rules, fields=tuple(f for f in rules.fields if f not in MONEY_FIELDS))
        return rules


def check_account(qbo, account_id: str, types: tuple[str, ...], role: str) -> None:
    found = qbo.query(f"select * from Account where Id = {quoted([str(account_id)])}").get("Account", [])  # noqa: S608
    if not found:
        raise ValueError(f"the {role} {account_id} is not an account of the QuickBooks company")
    account = found[0]
    if account.get("AccountType") not in types or account.get("Active") is False:
        raise ValueError(
            f"the {role} must be an active {' or '.join(types)} account; {account.get('Name')} ({account_id}) is "
            + ("inactive" if account.get("Active") is False else f"a {account.get('AccountType')} account")
        )


def first_account(qbo, account_type: str, sub_type: str | None = None) -> str | None:
    """The id of the company's first active account of a type (the default for items we create)."""
    where = f"AccountType = {quoted([account_type])} and Active = true"
    if sub_type:
        where += f" and AccountSubType = {quoted([sub_type])}"
    found = qbo.query(f"select * from Account where {where} orderby Id maxresults 1").get("Account", [])  # noqa: S608
    return found[0]["Id"] if found else None


def _new_item_accounts(fields: Mapping[str, Any], changes: Mapping[str, Any], options: Mapping[str, Any]) -> dict:
    """Type and accounts of an item created from a HubSpot product."""
    wanted = QBO_TYPES.get(changes.get("type") or fields.get("type") or "", "Service")
    if wanted == "Inventory" and not options.get("allow_inventory"):
        wanted = "NonInventory"  # HubSpot has no quantity on hand
    body: dict[str, Any] = {"Type": wanted}
    if options.get("income_account_id"):
        body["IncomeAccountRef"] = {"value": str(options["income_account_id"])}
    if wanted == "Inventory":
        body.update(
            TrackQtyOnHand=True,
            QtyOnHand=0,
            InvStartDate=str(options.get("inventory_start_date") or ""),
            AssetAccountRef={"value": str(options.get("asset_account_id") or "")},
            ExpenseAccountRef={"value": str(options.get("expense_account_id") or "")},
        )
    elif changes.get("cost") and options.get("expense_account_id"):
        body["ExpenseAccountRef"] = {"value": str(options["expense_account_id"])}
    return body
