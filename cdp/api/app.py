"""The CDP HTTP API (Sanic, in the actions venv): `python -m cdp serve --port 8085`.

Every route, /openapi.json included, needs `Authorization: Bearer <CDP_API_TOKEN>`;
anything else is 401. Bodies are validated by the importer (cdp.importer.import_record),
so errors are 422 with the offending field. A write naming a customer that was merged
away goes to the survivor, whose id the answer carries. Each request is one transaction,
run in a worker thread so the event loop never waits on the database. Reads here are by
systems, not people, so they are not in the personal-data audit log.
"""

import asyncio
import hmac
import json
import os
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cdp.api.openapi import openapi_document
from cdp.changes import Change
from cdp.clock import isoformat_z
from cdp.consents.service import current_consents
from cdp.db import run_in_transaction
from cdp.errors import CdpError, ImportRecordError, InvalidValue, ProfileNotFound
from cdp.identities.service import canonical_profile
from cdp.importer import import_record
from cdp.profiles.models import Profile
from cdp.profiles.service import profile_document, resolve_ref

API_TOKEN_ENV = "CDP_API_TOKEN"
MIN_TOKEN_LENGTH = 16
BODY = "$"

Handler = Callable[..., Awaitable[HTTPResponse]]


class ApiTokenMissing(CdpError):
    """The API refuses to start without a token: an open CDP would leak every profile."""

    def __init__(self) -> None:
        super().__init__(
            f"{API_TOKEN_ENV} is not set (or shorter than {MIN_TOKEN_LENGTH} characters); "
            "export a random token to serve the API"
        )


def api_token() -> str:
    """The bearer token from CDP_API_TOKEN; ApiTokenMissing when unset or too short."""
    token = os.environ.get(API_TOKEN_ENV, "").strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ApiTokenMissing()
    return token


class ApiError(Exception):
    """An answer other than success: status, error code, message and maybe a field."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field

    def response(self) -> HTTPResponse:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return json_response(body, status=self.status, headers=headers)


def create_app(engine: Engine, token: str, name: str = "cdp_api") -> Sanic:
    """The Sanic application serving `engine`'s CDP behind `token`."""
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"

    async def run(work: Callable[[Session], Any]) -> Any:
        return await asyncio.to_thread(run_in_transaction, engine, work)

    @app.on_request
    async def authenticate(request: Request) -> HTTPResponse | None:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return ApiError(401, "unauthorized", "missing or wrong bearer token").response()
        return None

    @app.exception(ApiError)
    async def api_error(_request: Request, error: ApiError) -> HTTPResponse:
        return error.response()

    async def openapi(_request: Request) -> HTTPResponse:
        return json_response(openapi_document())

    async def get_profile(_request: Request, ref: str) -> HTTPResponse:
        ref = unquote(ref)

        def read(session: Session) -> dict[str, Any]:
            try:
                profile = resolve_ref(session, ref)
            except InvalidValue as error:
                raise ApiError(422, "invalid", str(error), "ref") from None
            if profile is None:
                raise ApiError(404, "not_found", f"no profile matches {ref!r}")
            document = profile_document(session, profile)
            document["consents"] = [
                {
                    "purpose": state.purpose.value,
                    "channel": state.channel.value,
                    "status": state.status.value,
                    "at": isoformat_z(state.recorded_at),
                    "source": state.source,
                }
                for state in current_consents(session, profile.customer_id)
            ]
            return document

        return json_response(await run(read))

    async def put_profile(request: Request, ref: str) -> HTTPResponse:
        ref = unquote(ref)
        if ":" in ref:
            raise ApiError(
                422, "invalid", "a profile is written by customer_id, not type:value", "ref"
            )
        data = _body(request)
        if "customer_id" in data:
            raise ApiError(
                422, "invalid", "unknown field; the customer id is in the path", "customer_id"
            )
        return await _write(run, "profile", {**data, "customer_id": ref})

    def ingest(kind: str) -> Handler:
        async def handler(request: Request) -> HTTPResponse:
            return await _write(run, kind, _body(request))

        return handler

    routes: list[tuple[str, str, Handler, str]] = [
        ("GET", "/openapi.json", openapi, "openapi"),
        ("GET", "/v1/profiles/<ref:str>", get_profile, "get_profile"),
        ("PUT", "/v1/profiles/<ref:str>", put_profile, "put_profile"),
        ("POST", "/v1/events", ingest("event"), "post_event"),
        ("POST", "/v1/orders", ingest("order"), "post_order"),
        ("POST", "/v1/consents", ingest("consent"), "post_consent"),
    ]
    for method, path, handler, route_name in routes:
        app.add_route(handler, path, methods=[method], name=route_name)
    return app


async def _write(
    run: Callable[[Callable[[Session], Any]], Awaitable[Any]], kind: str, data: dict[str, Any]
) -> HTTPResponse:
    if "kind" in data:
        raise ApiError(422, "invalid", "unknown field; the route says what kind it is", "kind")

    def write(session: Session) -> tuple[Change, Any]:
        record = {"kind": kind, **data}
        owner = record.get("customer_id")
        profile = session.get(Profile, owner) if isinstance(owner, str) else None
        if profile is not None and profile.merged_into is not None:
            record["customer_id"] = canonical_profile(session, profile).customer_id
        try:
            return import_record(session, record)[1], record["customer_id"]
        except ImportRecordError as error:
            raise ApiError(422, "invalid", f"{error.field}: {error.reason}", error.field) from None
        except ProfileNotFound as error:
            raise ApiError(422, "invalid", str(error), "customer_id") from None
        except CdpError as error:
            raise ApiError(409, "conflict", str(error)) from None

    change, customer_id = await run(write)
    body = {"kind": kind, "result": change.value, "customer_id": customer_id}
    return json_response(body, status=201 if change is Change.CREATED else 200)


def _body(request: Request) -> dict[str, Any]:
    """The JSON object in the body, numbers as Decimal so money stays exact."""
    try:
        data = json.loads(
            request.body or b"", parse_float=Decimal, object_pairs_hook=_without_duplicates
        )
    except ValueError as error:
        raise ApiError(422, "invalid", f"body is not valid JSON: {error}", BODY) from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", "body must be a JSON object", BODY)
    return data


def _without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {key!r}")
        data[key] = value
    return data


def sanic_path_to_openapi(path: str) -> str:
    """/v1/profiles/<ref:str> as OpenAPI writes it: /v1/profiles/{ref}."""
    parts = []
    for part in path.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].split(":")[0] + "}"
        parts.append(part)
    return "/".join(parts)
