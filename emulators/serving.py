"""What both emulators need to run: a threaded WSGI server without an access log, and a
background loop (webhook senders, retry runners) that can be stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No access log: each emulator's control API keeps the request log."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class ThreadedServer:
    """Serve `app` from a daemon thread on host:port (port 0: any free one)."""

    def __init__(self, app, host: str, port: int, name: str) -> None:
        self._server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://{'localhost' if host in ('127.0.0.1', 'localhost') else host}:{self.port}"
        # A short poll interval makes stop() quick (tests start and stop one emulator each).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    def start_serving(self) -> None:
        self._thread.start()

    def stop_serving(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class BackgroundLoop:
    """Calls `step` every `interval` seconds in a daemon thread until stopped; a failing step waits a little."""

    def __init__(self, step: Callable[[], None], name: str, interval: float = 0.05) -> None:
        self.step, self.name, self.interval = step, name, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - one bad step must not end the loop
                time.sleep(0.5)
