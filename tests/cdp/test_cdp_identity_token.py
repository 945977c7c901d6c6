"""Identity tokens: only a correctly signed, unexpired HS256 token with a string sub passes."""

import base64
import json
import time

import jwt
import pytest

from cdp.identity_token import IDENTITY_SECRET_ENV, identity_secret, mint_token, verify_token

SECRET = "test-secret-that-is-long-enough-for-hs256!"


def _encode(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _unsigned(claims: dict[str, object]) -> str:
    """A token with alg "none" and no signature, built by hand."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_minted_token_verifies_to_its_customer() -> None:
    token = mint_token("C-1001", SECRET)
    assert verify_token(token, SECRET) == "C-1001"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "C-1001"
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5


def test_ttl_sets_expiry() -> None:
    claims = jwt.decode(mint_token("C-1", SECRET, ttl_seconds=60), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("customer_id", "secret", "ttl"),
    [("", SECRET, 60), ("C-1", "", 60), ("C-1", SECRET, 0), ("C-1", SECRET, -5)],
)
def test_mint_refuses_bad_arguments(customer_id: str, secret: str, ttl: int) -> None:
    with pytest.raises(ValueError):
        mint_token(customer_id, secret, ttl)


def test_expired_token_is_refused() -> None:
    now = int(time.time())
    assert verify_token(_encode({"sub": "C-1", "iat": now - 120, "exp": now - 60}), SECRET) is None


def test_wrong_secret_is_refused() -> None:
    assert verify_token(mint_token("C-1", "another-secret-of-decent-length!!"), SECRET) is None


def test_token_without_exp_is_refused() -> None:
    assert verify_token(_encode({"sub": "C-1", "iat": int(time.time())}), SECRET) is None


def test_alg_none_is_refused() -> None:
    token = _unsigned({"sub": "C-1", "exp": int(time.time()) + 600})
    assert verify_token(token, SECRET) is None


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithms_are_refused_even_with_the_right_secret(algorithm: str) -> None:
    token = _encode({"sub": "C-1", "exp": int(time.time()) + 600}, algorithm=algorithm)
    assert verify_token(token, SECRET) is None


@pytest.mark.parametrize("subject", [1001, None, "", "   ", ["C-1"], {"id": "C-1"}])
def test_sub_must_be_a_non_empty_string(subject: object) -> None:
    claims: dict[str, object] = {"exp": int(time.time()) + 600}
    if subject is not None:
        claims["sub"] = subject
    assert verify_token(_encode(claims), SECRET) is None


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
        "eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln",
        12345,
        b"bytes.are.not.strings",
        ["token"],
        {"sub": "C-1"},
    ],
)
def test_garbage_and_non_strings_are_refused(token: object) -> None:
    assert verify_token(token, SECRET) is None


def test_bytes_of_a_valid_token_are_refused() -> None:
    assert verify_token(mint_token("C-1", SECRET).encode(), SECRET) is None


def test_tampered_payload_is_refused() -> None:
    header, _, signature = mint_token("C-1", SECRET).split(".")
    forged = (
        base64.urlsafe_b64encode(json.dumps({"sub": "C-2", "exp": int(time.time()) + 600}).encode())
        .rstrip(b"=")
        .decode()
    )
    assert verify_token(f"{header}.{forged}.{signature}", SECRET) is None


@pytest.mark.parametrize("secret", [None, "", "  "])
def test_missing_secret_verifies_nothing(secret: str | None) -> None:
    assert verify_token(mint_token("C-1", SECRET), secret) is None
    assert verify_token(_encode({"sub": "C-1", "exp": int(time.time()) + 60}, "  "), secret) is None


def test_identity_secret_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IDENTITY_SECRET_ENV, raising=False)
    assert identity_secret() is None
    monkeypatch.setenv(IDENTITY_SECRET_ENV, "   ")
    assert identity_secret() is None
    monkeypatch.setenv(IDENTITY_SECRET_ENV, SECRET)
    assert identity_secret() == SECRET
