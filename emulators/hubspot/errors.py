"""HubSpot's error bodies (NOTES §2): `{status, message, correlationId, category, …}`."""

from __future__ import annotations

import json
import uuid

from flask import Response


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        context: dict | None = None,
        errors: list | None = None,
        sub_category: str | None = None,
        links: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.context, self.errors, self.sub_category, self.links = context, errors, sub_category, links

    def body(self) -> dict:
        body = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        if self.errors:
            body["errors"] = self.errors
        if self.links:
            body["links"] = self.links
        return body

    def standard_error(self) -> dict:
        """The per-input error inside a 207 batch response (`StandardError`)."""
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.context or {},
            "errors": self.errors or [],
            "links": self.links or {},
            **({"subCategory": self.sub_category} if self.sub_category else {}),
        }


def not_found(message: str = "resource not found", **context: list[str]) -> ApiError:
    return ApiError(404, "OBJECT_NOT_FOUND", message, context=context or None)


def validation(message: str, **kwargs) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, **kwargs)


def json_response(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json;charset=utf-8")


def no_content() -> Response:
    """204 with no body and no Content-Type, as HubSpot answers archive and delete calls."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
