"""Periodic jobs, run by the single `clock` process: `rq cron sync.tasks.schedule`.

Only one clock process may run; it only enqueues, and workers do the work.
"""

import os

from rq import cron

from sync.tasks.maintenance import prune_history, refresh_quiet_connections
from sync.tasks.syncing import recover_abandoned_runs, sweep

cron.register(prune_history, "low", interval=60 * 60, name="prune_history")
cron.register(refresh_quiet_connections, "low", interval=24 * 60 * 60, name="refresh_quiet_connections")
cron.register(sweep, "low", interval=5 * 60, name="sweep")  # every change syncs within 10 minutes, webhooks or not
# A dead worker's run is looked for twice a lease (LEDGERSYNC_RUN_LEASE_SECONDS, 60 s by default).
RECOVER_EVERY = max(1, round(float(os.environ.get("LEDGERSYNC_RUN_LEASE_SECONDS") or 60) / 2))
cron.register(recover_abandoned_runs, "high", interval=RECOVER_EVERY, name="recover_abandoned_runs")
