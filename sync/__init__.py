"""Ledgersync's core: settings, state, jobs and the sync itself. Knows nothing of Flask."""
