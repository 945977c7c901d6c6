"""Signed identity tokens: how the web and REST channels say who the visitor is.

The website mints a short-lived HS256 JWT for a logged-in customer; the assistant trusts
a customer id only when verify_token accepts the token that carried it.
"""

import os
import time

import jwt

IDENTITY_SECRET_ENV = "CDP_IDENTITY_SECRET"
ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 3600


def identity_secret() -> str | None:
    """The shared signing secret from CDP_IDENTITY_SECRET; None when unset or blank."""
    secret = os.environ.get(IDENTITY_SECRET_ENV, "")
    return secret if secret.strip() else None


def mint_token(customer_id: str, secret: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A token naming customer_id (`sub`), issued now (`iat`), expiring ttl_seconds later."""
    if not customer_id.strip():
        raise ValueError("customer_id must not be empty")
    if not secret.strip():
        raise ValueError("secret must not be empty")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    issued_at = int(time.time())
    claims = {"sub": customer_id, "iat": issued_at, "exp": issued_at + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: object, secret: str | None) -> str | None:
    """The customer id in a valid token, else None; never raises.

    Valid means: a string, signed with HS256 and this secret (alg "none" or any other
    algorithm is refused), carrying an `exp` that has not passed and a non-empty string
    `sub`. Without a secret nothing verifies, so a misconfigured server trusts no one.
    """
    if not isinstance(token, str) or not token or not secret or not secret.strip():
        return None
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        return None
    return subject
