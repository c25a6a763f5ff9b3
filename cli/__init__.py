"""Flask CLI commands (`flask --app app …`), one group per module."""

from flask import Flask


def register_commands(app: Flask) -> None:
    from cli import db, jobs, sync, tokens

    for module in (db, jobs, tokens, sync):
        app.cli.add_command(module.group)
