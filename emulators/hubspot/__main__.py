"""`python -m emulators.hubspot --port 8101`: serve the HubSpot emulator."""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import run_simple

from emulators.hubspot.app import DEFAULT_APP_ID, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_emulator, state_of
from emulators.hubspot.control import apply_project
from emulators.hubspot.project import load_project


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.hubspot", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--app-id", type=int, default=DEFAULT_APP_ID, help=f"default {DEFAULT_APP_ID}")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help=f"default {DEFAULT_CLIENT_ID}")
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET, help=f"default {DEFAULT_CLIENT_SECRET}")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn the 110/10 s and search 5/s limits off")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument("--project", help="load the app's developer-project files from this folder")
    parser.add_argument(
        "--proxy",
        action="append",
        default=[],
        metavar="DECLARED=LOCAL",
        help="serve a declared https base URL from a local one, e.g. "
        "https://ledgersync.example.com=http://localhost:8000 (repeatable)",
    )
    args = parser.parse_args()
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_emulator(
        app_id=args.app_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        rate_limits=not args.no_rate_limits,
    )
    state = state_of(app)
    if args.project:
        proxy = dict(item.split("=", 1) for item in args.proxy)
        with state.lock:
            apply_project(state, load_project(args.project, proxy))
    state.webhooks.start()
    print(
        f"HubSpot emulator on http://localhost:{args.port} (app {args.app_id}, client id {args.client_id})", flush=True
    )
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
