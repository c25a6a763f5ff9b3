"""`flask db …`: apply and inspect schema migrations."""

import click
from flask import current_app
from flask.cli import AppGroup

from sync.store import migrate


def _engine():
    return current_app.extensions["ledgersync"].database.engine


group = AppGroup("db", help="Apply and inspect database migrations.")


@group.command("upgrade", help="Migrate the database to the newest (or given) revision.")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    migrate.upgrade(_engine(), revision)
    click.echo(f"database at revision {migrate.current_revision(_engine())}")


@group.command("downgrade", help="Migrate the database back to REVISION ('base' empties it).")
@click.argument("revision")
def downgrade(revision: str) -> None:
    migrate.downgrade(_engine(), revision)
    click.echo(f"database at revision {migrate.current_revision(_engine())}")


@group.command("current", help="Show the database's revision and the code's.")
def current() -> None:
    click.echo(f"database: {migrate.current_revision(_engine())}  code: {migrate.head_revision()}")


@group.command("revision", help="Write a new migration from the difference between models and database.")
@click.option("-m", "--message", required=True)
@click.option("--empty", is_flag=True, help="Write an empty migration instead of autogenerating.")
def revision(message: str, empty: bool) -> None:
    migrate.new_revision(_engine(), message, autogenerate=not empty)
