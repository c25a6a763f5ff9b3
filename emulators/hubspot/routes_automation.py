"""Workflow-action callbacks (NOTES §6): complete a blocked or async execution, one or a batch (204)."""

from __future__ import annotations

from flask import Blueprint

from emulators.hubspot.errors import no_content, validation
from emulators.hubspot.routes_crm import json_body, require_scopes, state

bp = Blueprint("automation", __name__)


@bp.post("/automation/v4/actions/callbacks/<callback_id>/complete")
def complete(callback_id: str):
    require_scopes("automation")
    body = json_body()
    # SDK v12 sends only outputFields; the newer spec's typedOutputs is not required (NOTES §6).
    outputs = body.get("outputFields")
    if not isinstance(outputs, dict):
        raise validation("outputFields is required")
    with state().lock:
        state().calls.complete(callback_id, outputs)
    return no_content()


@bp.post("/automation/v4/actions/callbacks/complete")
def complete_batch():
    require_scopes("automation")
    inputs = json_body().get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise validation("inputs must be a non-empty list of {callbackId, outputFields}")
    with state().lock:
        for item in inputs:
            if (
                not isinstance(item, dict)
                or not item.get("callbackId")
                or not isinstance(item["callbackId"], str)
                or not isinstance(item.get("outputFields"), dict)
            ):
                raise validation("each input needs callbackId (a string) and outputFields (an object)")
        for item in inputs:
            state().calls.complete(item["callbackId"], item["outputFields"])
    return no_content()
