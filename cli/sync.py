"""`flask sync …`: set a sync up, run it now (with a progress bar), and see its status."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from sync.objects import names
from sync.objects import object_type as registered
from sync.runner import run_object
from sync.setup import DIRECTION_NAMES, set_up
from sync.store.models import QboCompany, RecordLink, SyncBacklog

group = AppGroup("sync", help="Set up, run and inspect syncs.")


def _company(portal: int | None) -> QboCompany:
    runtime = current_app.extensions["ledgersync"]
    with runtime.database.session() as session:
        query = select(QboCompany).where(QboCompany.status == "connected")
        companies = [c for c in session.scalars(query) if portal is None or c.installation.hub_id == portal]
    if len(companies) != 1:
        raise click.ClickException(f"name the portal with --portal (found {len(companies)} connected companies)")
    return companies[0]


@group.command("setup", help="Set up (or change) the sync of OBJECT.")
@click.argument("object_type", type=click.Choice(names()))
@click.option(
    "--direction",
    type=click.Choice(sorted(DIRECTION_NAMES)),
    help="default: as it is, or for a new sync the object's recommended one (contacts two-way, products"
    " qbo-to-hubspot)",
)
@click.option("--winner", type=click.Choice(["hubspot", "quickbooks"]), default="hubspot", show_default=True)
@click.option(
    "--deletes",
    type=click.Choice(["keep", "propagate"]),
    default=None,
    help="a record deleted on one side: keep the other (default) or delete it too (QBO: made inactive)",
)
@click.option(
    "--company-name/--no-company-name",
    default=None,
    help="contacts: name new QBO customers after the contact's primary company (default) or the person",
)
@click.option("--name-template", help='contacts: a display-name template, e.g. "{company} ({email})"')
@click.option(
    "--rename/--no-rename",
    default=None,
    help="contacts: rename the customers Ledgersync created when the contact's company or name changes"
    " (off by default; customers born in QBO are never renamed)",
)
@click.option(
    "--hubspot-filter",
    type=click.Choice(["recommended", "none"]),
    help="which HubSpot records may start syncing: the recommended filter (contacts: billing contacts of"
    " invoices; the default for a new sync) or none (all)",
)
@click.option(
    "--field",
    "field_toggles",
    multiple=True,
    metavar="NAME=on|off",
    help="turn a default mapping on or off, e.g. --field phone=off (repeatable)",
)
@click.option(
    "--match-by-name/--sku-only",
    default=None,
    help="products: records without a SKU match by their exact name (default: SKU only; the others are left out)",
)
@click.option("--income-account", help="products: the QBO income account id of items created from HubSpot")
@click.option("--expense-account", help="products: the QBO expense account id of items with a cost")
@click.option(
    "--inventory/--no-inventory",
    default=None,
    help="products: create inventory products as Inventory items (quantity 0 from the set-up date; needs an"
    " asset account) instead of NonInventory",
)
@click.option("--asset-account", help="products: the QBO inventory asset account id")
@click.option("--portal", type=int, help="the HubSpot portal id, when several are installed")
def setup(
    object_type: str,
    direction: str,
    winner: str,
    deletes: str | None,
    company_name: bool | None,
    name_template: str | None,
    rename: bool | None,
    hubspot_filter: str | None,
    field_toggles: tuple[str, ...],
    match_by_name: bool | None,
    income_account: str | None,
    expense_account: str | None,
    inventory: bool | None,
    asset_account: str | None,
    portal: int | None,
) -> None:
    company = _company(portal)
    options: dict = {}
    if company_name is not None:
        options["use_company"] = company_name
    if name_template is not None:
        options["template"] = name_template
    if rename is not None:
        options["rename"] = rename
    for name, value in (
        ("match_by_name", match_by_name),
        ("income_account_id", income_account),
        ("expense_account_id", expense_account),
        ("allow_inventory", inventory),
        ("asset_account_id", asset_account),
    ):
        if value is not None:
            options[name] = value
    filters = None
    if hubspot_filter is not None:
        filters = {
            "hubspot": registered(object_type).recommended_filters.get("hubspot")
            if hubspot_filter == "recommended"
            else None
        }
    fields = {}
    for toggle in field_toggles:
        name, _, state = toggle.partition("=")
        if state not in ("on", "off"):
            raise click.BadParameter(f"{toggle!r}: write NAME=on or NAME=off", param_hint="--field")
        fields[name.strip()] = state == "on"
    runtime = current_app.extensions["ledgersync"]
    try:
        settings = set_up(
            runtime,
            company.id,
            object_type,
            direction,
            winner,
            deletes,
            options=options,
            filters=filters,
            fields=fields,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    direction_name = next(k for k, v in DIRECTION_NAMES.items() if v == settings.direction)
    click.echo(f"{object_type}: {direction_name}, {winner} wins conflicts, deletes: {settings.delete_policy}")
    for name in ("income_account_id", "expense_account_id", "asset_account_id", "match_by_name", "allow_inventory"):
        if name in (settings.options or {}):
            click.echo(f"  {name.replace('_', ' ')}: {settings.options[name]}")
    off = [name for name, mapping in (settings.field_mappings or {}).items() if not mapping.get("enabled", True)]
    click.echo("  fields off: " + (", ".join(sorted(off)) if off else "none"))
    labels = registered(object_type).filter_labels
    for side in ("hubspot", "quickbooks"):
        name = (settings.filters or {}).get(side)
        click.echo(f"  new {side} records: " + (f"only the {labels.get(name, name)}" if name else "all"))


@group.command("run", help="Run the sync of OBJECT now.")
@click.argument("object_type", type=click.Choice(names()))
@click.option("--portal", type=int)
def run(object_type: str, portal: int | None) -> None:
    company = _company(portal)
    with click.progressbar(length=1, label=f"syncing {object_type}") as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        summary = run_object(current_app.extensions["ledgersync"], company.id, object_type, progress)
    if summary.skipped_run:
        raise click.ClickException(f"nothing ran: {summary.skipped_run}")
    click.echo(", ".join(f"{kind} {count}" for kind, count in sorted(summary.counts.items())) or "nothing to do")


@group.command("status", help="Counts of syncing / failed / excluded / waiting records, and the failures.")
@click.option("--portal", type=int)
def status(portal: int | None) -> None:
    company = _company(portal)
    with current_app.extensions["ledgersync"].database.session() as session:
        rows = session.execute(
            select(RecordLink.object_type, RecordLink.state, func.count())
            .where(RecordLink.qbo_company_id == company.id)
            .group_by(RecordLink.object_type, RecordLink.state)
        ).all()
        failures = session.scalars(
            select(RecordLink).where(RecordLink.qbo_company_id == company.id, RecordLink.state == "failed").limit(50)
        ).all()
        queued = session.execute(
            select(SyncBacklog.object_type, func.count())
            .where(SyncBacklog.qbo_company_id == company.id)
            .group_by(SyncBacklog.object_type)
        ).all()
        for object_type, state, count in sorted(rows):
            click.echo(f"{object_type:10} {state:9} {count}")
        for object_type, count in sorted(queued):  # found changed, not yet synced (jobs work through it)
            click.echo(f"{object_type:10} {'queued':9} {count}")
        for link in failures:
            click.echo(
                f"  failed {link.object_type} hubspot={link.hubspot_id} qbo={link.qbo_id}: "
                f"[{link.error_category}] {link.error_message}"
            )
