"""`python -m emulators.quickbooks --port 8102`: serve the QuickBooks Online emulator."""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import run_simple

from emulators.quickbooks import app as qbo


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.quickbooks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--client-id", default=qbo.DEFAULT_CLIENT_ID, help="production keys")
    parser.add_argument("--client-secret", default=qbo.DEFAULT_CLIENT_SECRET)
    parser.add_argument("--dev-client-id", default=qbo.DEFAULT_DEV_CLIENT_ID, help="development (sandbox) keys")
    parser.add_argument("--dev-client-secret", default=qbo.DEFAULT_DEV_CLIENT_SECRET)
    parser.add_argument("--verifier-token", default=qbo.DEFAULT_VERIFIER_TOKEN, help="webhook verifier token")
    parser.add_argument("--webhook-url", help="where to deliver webhooks")
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = qbo.create_emulator(
        args.client_id,
        args.client_secret,
        args.dev_client_id,
        args.dev_client_secret,
        args.verifier_token,
        rate_limits=not args.no_rate_limits,
    )
    state = qbo.state_of(app)
    state.webhooks.url = args.webhook_url
    state.webhooks.start()
    print(f"QuickBooks Online emulator on http://localhost:{args.port} (client id {args.client_id})", flush=True)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
