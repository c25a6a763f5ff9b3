"""HubSpot's request signatures (NOTES §4): v1 and v2 (hex SHA-256), v3 (base64 HMAC-SHA256).

The emulator signs what it sends to the app with these; the tests check them
against NOTES' vectors and against `hubspot.utils.signature`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# v3 signs the URI with these escapes decoded (not the `?` that starts the query).
V3_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def v1(client_secret: str, body: str) -> str:
    return hashlib.sha256((client_secret + body).encode()).hexdigest()


def v2(client_secret: str, method: str, uri: str, body: str) -> str:
    return hashlib.sha256((client_secret + method + uri + body).encode()).hexdigest()


def decode_uri_for_v3(uri: str) -> str:
    for encoded, plain in V3_DECODED.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    return uri


def v3(client_secret: str, method: str, uri: str, body: str, timestamp_ms: int) -> str:
    message = f"{method}{decode_uri_for_v3(uri)}{body}{timestamp_ms}".encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def headers(client_secret: str, method: str, uri: str, body: str, timestamp_ms: int, *, versions: tuple) -> dict:
    """The signature headers of the given versions; v1 and v2 share `X-HubSpot-Signature`."""
    result = {}
    if "v1" in versions:
        result.update({"X-HubSpot-Signature": v1(client_secret, body), "X-HubSpot-Signature-Version": "v1"})
    if "v2" in versions:
        result.update(
            {"X-HubSpot-Signature": v2(client_secret, method, uri, body), "X-HubSpot-Signature-Version": "v2"}
        )
    if "v3" in versions:
        result.update(
            {
                "X-HubSpot-Signature-v3": v3(client_secret, method, uri, body, timestamp_ms),
                "X-HubSpot-Request-Timestamp": str(timestamp_ms),
            }
        )
    return result
