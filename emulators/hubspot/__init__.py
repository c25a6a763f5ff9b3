"""A local HubSpot: the CRM API, OAuth and limits, for tests, benchmarks and the demo.

`create_emulator(...)` builds the WSGI app; `python -m emulators.hubspot` serves it;
`EmulatorServer` runs it in a thread (the pytest fixture). See emulators/README.md.
"""

from emulators.hubspot.app import create_emulator
from emulators.hubspot.server import EmulatorServer

__all__ = ["EmulatorServer", "create_emulator"]
