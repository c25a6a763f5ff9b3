"""`flask jobs …`: check that workers run jobs, and run housekeeping now."""

import time

import click
from flask import current_app
from flask.cli import AppGroup

from sync.tasks.maintenance import ping as ping_job
from sync.tasks.maintenance import prune_history

group = AppGroup("jobs", help="Work with the job queue.")


@group.command("ping", help="Enqueue a ping job and wait for a worker to run it.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait.")
def ping(timeout: float) -> None:
    runtime = current_app.extensions["ledgersync"]
    job = runtime.enqueue(ping_job, "from flask jobs ping", queue="high")
    deadline = time.monotonic() + timeout
    while job.get_status(refresh=True) not in ("finished", "failed"):
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"no worker ran job {job.id} within {timeout:g}s: is a worker running?"
            )
        time.sleep(0.1)
    if job.get_status() == "failed":
        raise click.ClickException(f"job {job.id} failed: {job.latest_result().exc_string}")
    click.echo(f"pong: {job.return_value()}")


@group.command("prune", help="Delete history past its retention now (the clock does it hourly).")
def prune() -> None:
    job = current_app.extensions["ledgersync"].enqueue(prune_history, queue="low")
    click.echo(f"enqueued {job.id}")
