"""Thin wrappers over the official SDKs: base URLs from settings, plain data out, one error taxonomy."""
