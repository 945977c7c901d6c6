"""The CDP HTTP API over real HTTP: `python -m cdp serve` in a subprocess on a real database."""

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from sqlalchemy import Engine

import cdp
from cdp.api.app import API_TOKEN_ENV, create_app, sanic_path_to_openapi
from cdp.api.openapi import openapi_document
from cdp.cli import SEED_FILE
from cdp.db import make_engine, migrate, transaction
from cdp.importer import import_file
from cdp.merges.service import merge_profiles
from tests.postgres import postgres_database_or_skip

REPO_ROOT = Path(cdp.__file__).resolve().parent.parent
TOKEN = "api-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STARTUP_TIMEOUT_S = 90
_app_names = itertools.count()


class Api:
    """A running server: its base URL and the database behind it."""

    def __init__(self, base: str, engine: Engine) -> None:
        self.base = base
        self.engine = engine

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", AUTH)
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The API served from a seeded database, one server per backend for the module."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'cdp.sqlite3'}"
        yield from _serve(url)
        return
    with postgres_database_or_skip() as url:
        yield from _serve(url)


def _serve(url: str) -> Iterator[Api]:
    engine = make_engine(url)
    migrate(engine)
    with transaction(engine) as session:
        import_file(session, SEED_FILE)
    port = _free_port()
    environment = dict(os.environ, CDP_DATABASE_URL=url, **{API_TOKEN_ENV: TOKEN})
    server = subprocess.Popen(
        [sys.executable, "-m", "cdp", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = Api(f"http://127.0.0.1:{port}", engine)
    try:
        _wait_until_up(api, server)
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)
        engine.dispose()


def _wait_until_up(api: Api, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            pytest.fail(f"the API server exited with {server.returncode}: {output}")
        try:
            api.call("GET", "/openapi.json")
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail(f"the API server did not answer within {STARTUP_TIMEOUT_S} s")


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the spec, path parameters filled in."""
    spec = openapi_document()
    return [
        (method.upper(), path.replace("{ref}", "C-1001"))
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    ]


def _validator(schema_name: str) -> Draft202012Validator:
    spec = openapi_document()
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_every_route_refuses_a_missing_or_wrong_token(api: Api, headers: dict[str, str]) -> None:
    for method, path in _operations():
        response = api.call(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_spec_paths_and_routes_are_the_same(api: Api) -> None:
    spec = openapi_document()
    assert api.call("GET", "/openapi.json").json() == spec
    app = create_app(api.engine, TOKEN, name=f"spec_check_{next(_app_names)}")
    routes = {
        (method, sanic_path_to_openapi("/" + route.path))
        for route in app.router.routes
        for method in route.methods
    }
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == documented
    Draft202012Validator.check_schema(spec["components"]["schemas"]["Order"])


def test_request_examples_match_the_spec_and_are_accepted(api: Api) -> None:
    spec = openapi_document()
    targets = {"/v1/profiles/{ref}": "/v1/profiles/C-1001"}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or "requestBody" not in operation:
                continue
            content = operation["requestBody"]["content"]["application/json"]
            schema_name = content["schema"]["$ref"].rsplit("/", 1)[1]
            _validator(schema_name).validate(content["example"])
            url = targets.get(path, path)
            first = api.call(method.upper(), url, json=content["example"])
            assert first.status_code in (200, 201), (path, first.text)
            _validator("WriteResult").validate(first.json())
            again = api.call(method.upper(), url, json=content["example"])
            assert (again.status_code, again.json()["result"]) == (200, "unchanged"), path


def test_ingest_is_idempotent_by_event_and_order_id(api: Api) -> None:
    event = {
        "customer_id": "C-1002",
        "event_id": "evt-idem-1",
        "type": "visit",
        "at": "2026-11-26T09:00:00Z",
    }
    assert api.call("POST", "/v1/events", json=event).status_code == 201
    repeated = api.call("POST", "/v1/events", json={**event, "type": "different"})
    assert (repeated.status_code, repeated.json()["result"]) == (200, "unchanged")
    order = {
        "customer_id": "C-1002",
        "order_id": "O-API-1",
        "placed_at": "2026-11-26T09:00:00Z",
        "status": "placed",
        "channel": "api",
        "currency": "USD",
        "items": [{"sku": "SKU-9", "name": "Mug", "qty": 1, "unit_price": 9.99}],
    }
    assert api.call("POST", "/v1/orders", json=order).status_code == 201
    assert api.call("POST", "/v1/orders", json=order).json()["result"] == "unchanged"
    shipped = api.call("POST", "/v1/orders", json={**order, "status": "shipped"})
    assert (shipped.status_code, shipped.json()["result"]) == (200, "updated")
    profile = api.call("GET", "/v1/profiles/C-1002").json()
    assert profile["orders"]["count"] >= 1


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "reason"),
    [
        (
            "POST",
            "/v1/orders",
            {
                "customer_id": "C-1001",
                "order_id": "O-X",
                "placed_at": "2026-11-26T09:00:00Z",
                "status": "placed",
                "channel": "api",
                "currency": "USD",
                "items": [{"sku": "S", "name": "N", "qty": 0, "unit_price": 1}],
            },
            "items[1].qty",
            "positive whole number",
        ),
        (
            "POST",
            "/v1/events",
            {"customer_id": "C-1001", "event_id": "e", "type": "t", "at": "yesterday"},
            "at",
            "not an ISO 8601 timestamp",
        ),
        (
            "POST",
            "/v1/events",
            {"customer_id": "C-404", "event_id": "e", "type": "t", "at": "2026-11-26T09:00:00Z"},
            "customer_id",
            "unknown customer C-404",
        ),
        ("POST", "/v1/events", {"kind": "order"}, "kind", "route says what kind"),
        (
            "POST",
            "/v1/consents",
            {"customer_id": "C-1001", "purpose": "spam"},
            "purpose",
            "unknown purpose",
        ),
        ("PUT", "/v1/profiles/C-1001", {"email": "not-an-email"}, "email", "not an address"),
        ("PUT", "/v1/profiles/C-1001", {"shoe_size": 44}, "shoe_size", "unknown field"),
        ("PUT", "/v1/profiles/phone:+15551230001", {"first_name": "X"}, "ref", "by customer_id"),
        ("GET", "/v1/profiles/fax:123", None, "ref", "unknown identity type 'fax'"),
    ],
)
def test_validation_errors_are_422_naming_the_field(
    api: Api, method: str, path: str, body: dict[str, Any] | None, field: str, reason: str
) -> None:
    response = api.call(method, path, json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    _validator("Error").validate(payload)
    assert payload["field"] == field and reason in payload["message"]


def test_bodies_that_are_not_json_objects_are_422(api: Api) -> None:
    for data in (b"{not json", b"[1, 2]", b'{"a": 1, "a": 2}'):
        response = api.call("POST", "/v1/events", data=data)
        assert (response.status_code, response.json()["field"]) == (422, "$")


def test_lookup_by_identifier_follows_the_ref_syntax(api: Api) -> None:
    by_phone = api.call("GET", "/v1/profiles/phone%3A%2B1%20555%20123%200001")
    assert by_phone.status_code == 200 and by_phone.json()["customer_id"] == "C-1001"
    assert isinstance(by_phone.json()["consents"], list)
    missing = api.call("GET", "/v1/profiles/C-9999")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    created = api.call(
        "PUT", "/v1/profiles/C-API-1", json={"first_name": "Ida", "phone": "+15550001111"}
    )
    assert (created.status_code, created.json()["result"]) == (201, "created")
    found = api.call("GET", "/v1/profiles/phone:+15550001111").json()
    assert found["customer_id"] == "C-API-1" and found["first_name"] == "Ida"


def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != API_TOKEN_ENV}
    environment["CDP_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cdp.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "-m", "cdp", "serve", "--port", str(_free_port())],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and f"error: {API_TOKEN_ENV} is not set" in result.stderr


def test_a_merged_customer_answers_and_writes_as_the_survivor(api: Api) -> None:
    with transaction(api.engine) as session:
        merge_profiles(session, "C-1003", "C-1006", reason="api test")
    assert api.call("GET", "/v1/profiles/C-1006").json()["customer_id"] == "C-1003"
    event = {
        "customer_id": "C-1006",
        "event_id": "evt-merged-1",
        "type": "visit",
        "at": "2026-11-26T09:00:00Z",
    }
    written = api.call("POST", "/v1/events", json=event)
    assert (written.status_code, written.json()["customer_id"]) == (201, "C-1003")
