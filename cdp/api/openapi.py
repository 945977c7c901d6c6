"""The OpenAPI 3.1 description of the CDP HTTP API, served at /openapi.json.

Request bodies are the JSON Lines import records (docs/cdp.md) without `kind`: the route
says what kind a body is, and the importer validates it, so the API and imports accept
exactly the same records.
"""

from typing import Any

_STRING = {"type": "string"}
_TIMESTAMP = {"type": "string", "format": "date-time", "description": "ISO 8601 with a zone"}
_MONEY = {"type": "number", "minimum": 0, "description": "at most two decimal places"}
_OBJECT = {"type": "object"}

ADDRESS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["line1", "city", "postal_code", "country"],
    "properties": {
        "line1": _STRING,
        "line2": {"type": ["string", "null"]},
        "city": _STRING,
        "region": {"type": ["string", "null"]},
        "postal_code": _STRING,
        "country": {"type": "string", "description": "ISO 3166-1 alpha-2"},
    },
}

PROFILE_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "description": "Attributes to set; absent ones are kept. The customer id is in the path.",
    "properties": {
        "first_name": _STRING,
        "last_name": _STRING,
        "email": _STRING,
        "email_verified": {"type": "boolean"},
        "phone": {"type": "string", "description": "E.164 after normalisation"},
        "phone_verified": {"type": "boolean"},
        "language": {"type": "string", "description": "BCP 47 tag such as en or es-MX"},
        "timezone": {"type": "string", "description": "IANA zone such as Europe/Rome"},
        "address": {"$ref": "#/components/schemas/Address"},
        "custom": _OBJECT,
        "verified": {
            "type": "boolean",
            "description": "the sender verified these values; an unverified value never "
            "replaces a verified one (422 naming the attribute)",
        },
    },
}

EVENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_id", "event_id", "type", "at"],
    "properties": {
        "customer_id": _STRING,
        "event_id": {"type": "string", "description": "idempotency key: stored once"},
        "type": _STRING,
        "at": _TIMESTAMP,
        "channel": _STRING,
        "properties": _OBJECT,
    },
}

ORDER_ITEM = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sku", "name", "qty", "unit_price"],
    "properties": {
        "sku": _STRING,
        "name": _STRING,
        "qty": {"type": "integer", "minimum": 1},
        "unit_price": _MONEY,
        "options": _OBJECT,
    },
}

ORDER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_id", "order_id", "placed_at", "status", "channel", "currency", "items"],
    "properties": {
        "customer_id": _STRING,
        "order_id": {"type": "string", "description": "idempotency key: same content, no-op"},
        "placed_at": _TIMESTAMP,
        "status": {
            "enum": ["placed", "paid", "shipped", "delivered", "cancelled", "returned"],
        },
        "channel": _STRING,
        "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/OrderItem"},
        },
        "delivery_address": {"$ref": "#/components/schemas/Address"},
    },
}

CONSENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_id", "purpose", "channel", "status", "at", "source"],
    "properties": {
        "customer_id": _STRING,
        "purpose": {"enum": ["service_messages", "marketing"]},
        "channel": {"enum": ["email", "sms", "messenger", "web", "any"]},
        "status": {"enum": ["granted", "withdrawn"]},
        "at": _TIMESTAMP,
        "source": _STRING,
        "evidence": _STRING,
    },
}

WRITE_RESULT = {
    "type": "object",
    "required": ["kind", "result"],
    "properties": {
        "kind": {"enum": ["profile", "event", "order", "consent"]},
        "result": {"enum": ["created", "updated", "unchanged"]},
        "customer_id": _STRING,
    },
}

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"enum": ["unauthorized", "invalid", "not_found", "conflict"]},
        "message": _STRING,
        "field": {"type": "string", "description": "path of the offending field; $ = body"},
    },
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "ProfileUpdate": {
        "first_name": "Ana",
        "last_name": "Diaz",
        "email": "ana.diaz@example.com",
        "email_verified": True,
        "language": "es-MX",
        "verified": True,
        "address": {
            "line1": "12 Elm St",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
    },
    "Event": {
        "customer_id": "C-1001",
        "event_id": "evt-2026-11-26-0001",
        "type": "payment_failed",
        "at": "2026-11-26T09:00:00Z",
        "channel": "web",
        "properties": {"order_id": "O-5001"},
    },
    "Order": {
        "customer_id": "C-1001",
        "order_id": "O-9001",
        "placed_at": "2026-11-26T10:30:00Z",
        "status": "paid",
        "channel": "web",
        "currency": "USD",
        "items": [{"sku": "SKU-1", "name": "Flat white beans", "qty": 2, "unit_price": 3.5}],
    },
    "Consent": {
        "customer_id": "C-1001",
        "purpose": "marketing",
        "channel": "email",
        "status": "granted",
        "at": "2026-11-26T10:31:00Z",
        "source": "web_checkout",
        "evidence": "ticked 'Email me offers' (form v3)",
    },
}


def _json_body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{schema}"},
                "example": EXAMPLES[schema],
            }
        },
    }


def _response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_ERRORS = {
    "401": _response("missing or wrong bearer token", "Error"),
    "422": _response("invalid body or parameter; `field` names it", "Error"),
}


def _ingest(summary: str, schema: str, key: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": _json_body(schema),
            "responses": {
                "201": _response("stored", "WriteResult"),
                "200": _response(
                    f"already stored with this {key} (updated or unchanged)", "WriteResult"
                ),
                **_ERRORS,
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The whole spec as a JSON-ready dict."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Northwind Corner CDP API",
            "version": "1",
            "description": "Every route needs `Authorization: Bearer $CDP_API_TOKEN`.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Address": ADDRESS,
                "ProfileUpdate": PROFILE_UPDATE,
                "Event": EVENT,
                "OrderItem": ORDER_ITEM,
                "Order": ORDER,
                "Consent": CONSENT,
                "WriteResult": WRITE_RESULT,
                "Error": ERROR,
                "Profile": {"type": "object", "required": ["customer_id"]},
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "the OpenAPI document"}, **_ERRORS},
                }
            },
            "/v1/profiles/{ref}": {
                "parameters": [
                    {
                        "name": "ref",
                        "in": "path",
                        "required": True,
                        "description": "a customer_id (C-1001) or type:value "
                        "(phone:+15551230001, email:ana@example.com), URL-encoded",
                        "schema": _STRING,
                    }
                ],
                "get": {
                    "summary": "Look a profile up; a merged profile answers with the survivor",
                    "responses": {
                        "200": _response(
                            "the profile with identities, orders and consents", "Profile"
                        ),
                        "404": _response("no profile matches", "Error"),
                        **_ERRORS,
                    },
                },
                "put": {
                    "summary": "Create the profile (ref must be a customer_id) or update it",
                    "requestBody": _json_body("ProfileUpdate"),
                    "responses": {
                        "201": _response("created", "WriteResult"),
                        "200": _response("updated or unchanged", "WriteResult"),
                        "409": _response(
                            "an identifier or verified value belongs elsewhere", "Error"
                        ),
                        **_ERRORS,
                    },
                },
            },
            "/v1/events": _ingest("Record an event once per event_id", "Event", "event_id"),
            "/v1/orders": _ingest("Record or update an order by order_id", "Order", "order_id"),
            "/v1/consents": _ingest("Append a consent decision", "Consent", "content"),
        },
    }
