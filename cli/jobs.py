"""`flask jobs …`: check that workers run jobs, and run housekeeping now."""

import click
from flask import current_app
from flask.cli import AppGroup

from sync.job_queue import JobNotFinished, wait_for_result
from sync.tasks.maintenance import ping as ping_job
from sync.tasks.maintenance import prune_history

group = AppGroup("jobs", help="Work with the job queue.")


@group.command("ping", help="Enqueue a ping job and wait for a worker to run it.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait.")
def ping(timeout: float) -> None:
    runtime = current_app.extensions["ledgersync"]
    job = runtime.enqueue(ping_job, "from flask jobs ping", queue="high")
    try:
        click.echo(f"pong: {wait_for_result(job, timeout)}")
    except JobNotFinished as error:
        raise click.ClickException(str(error)) from None


@group.command("prune", help="Delete history past its retention now (the clock does it hourly).")
def prune() -> None:
    job = current_app.extensions["ledgersync"].enqueue(prune_history, queue="low")
    click.echo(f"enqueued {job.id}")
