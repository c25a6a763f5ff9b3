"""`flask tokens …`: re-encrypt tokens under a new key, refresh quiet QuickBooks connections."""

import click
from flask import current_app
from flask.cli import AppGroup

from sync.tokens import TokenManager

group = AppGroup("tokens", help="Work with stored OAuth tokens.")


@group.command("rotate-key", help="Re-encrypt every stored token with the first key of TOKEN_ENCRYPTION_KEY.")
def rotate_key() -> None:
    count = TokenManager(current_app.extensions["ledgersync"]).rotate_encryption_key()
    click.echo(f"re-encrypted {count} token rows; the old key can now be removed from TOKEN_ENCRYPTION_KEY")


@group.command("refresh-quiet", help="Refresh QuickBooks tokens unused for 30 days (the clock does it daily).")
def refresh_quiet() -> None:
    count = TokenManager(current_app.extensions["ledgersync"]).refresh_quiet_connections()
    click.echo(f"refreshed {count} QuickBooks connections")
