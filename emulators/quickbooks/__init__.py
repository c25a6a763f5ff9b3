"""A local QuickBooks Online: the accounting API, OAuth, limits and webhooks, for tests and the demo.

`create_emulator(...)` builds the WSGI app; `python -m emulators.quickbooks` serves it;
`QboEmulatorServer` runs it in a thread (the pytest fixture). See emulators/README.md.
"""

from emulators.quickbooks.app import create_emulator
from emulators.quickbooks.server import QboEmulatorServer

__all__ = ["QboEmulatorServer", "create_emulator"]
