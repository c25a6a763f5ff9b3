"""Run the QBO emulator in a background thread (tests, benchmarks)."""

from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from emulators.quickbooks.app import create_emulator, state_of


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class QboEmulatorServer:
    """`with QboEmulatorServer() as qbo: qbo.url …` serves on 127.0.0.1 (port 0: any free one)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", **options) -> None:
        self.app = create_emulator(**options)
        self.state = state_of(self.app)
        self._server = make_server(host, port, self.app, threaded=True, request_handler=QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://localhost:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="qbo-emulator", daemon=True
        )

    def start(self) -> QboEmulatorServer:
        self._thread.start()
        self.state.webhooks.start()
        return self

    def stop(self) -> None:
        self.state.webhooks.stop()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> QboEmulatorServer:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
