"""Ledgersync's state store: models, the database connection and migrations."""
