"""Run the HubSpot emulator in a background thread (tests, benchmarks)."""

from __future__ import annotations

from emulators.hubspot.app import create_emulator, state_of
from emulators.serving import ThreadedServer


class EmulatorServer(ThreadedServer):
    """`with EmulatorServer() as hubspot: hubspot.url …` serves on 127.0.0.1 (port 0: any free one)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", **options) -> None:
        self.app = create_emulator(**options)
        self.state = state_of(self.app)
        super().__init__(self.app, host, port, "hubspot-emulator")

    def start(self) -> EmulatorServer:
        self.start_serving()
        self.state.webhooks.start()  # delivers webhooks and retries workflow actions in the background
        return self

    def stop(self) -> None:
        self.state.webhooks.stop()
        self.stop_serving()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
