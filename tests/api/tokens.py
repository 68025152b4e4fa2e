"""Signing keys and tokens for the verification tests (no network)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from saasodoo.adapters.auth import TokenVerifier, VerifierConfig

ISSUER = "https://project.supabase.example/auth/v1"
HS_SECRET = "legacy-project-jwt-secret-with-32-chars!"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KID, RSA_KID = "ec-key-1", "rsa-key-1"


def jwks() -> dict[str, Any]:
    ec_jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    return {
        "keys": [
            {**ec_jwk, "kid": EC_KID, "alg": "ES256", "use": "sig"},
            {**rsa_jwk, "kid": RSA_KID, "alg": "RS256", "use": "sig"},
        ]
    }


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "8d5c1f8e-0000-4000-8000-000000000001",
        "aud": "authenticated",
        "role": "authenticated",
        "email": "alice@example.com",
        "iat": now,
        "exp": now + 600,
        "app_metadata": {"provider": "email"},
        "user_metadata": {},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def es256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), EC_KEY, algorithm="ES256", headers={"kid": EC_KID})


def rs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), RSA_KEY, algorithm="RS256", headers={"kid": RSA_KID})


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), HS_SECRET, algorithm="HS256")


def verifier(*, jwks_url: bool = True, secret: bool = True) -> TokenVerifier:
    """A verifier whose JWKS comes from memory instead of the network."""
    v = TokenVerifier(
        VerifierConfig(
            issuer=ISSUER,
            jwks_url=f"{ISSUER}/.well-known/jwks.json" if jwks_url else None,
            hs256_secret=HS_SECRET if secret else None,
        )
    )
    if v._jwks is not None:
        v._jwks.fetch_data = jwks  # type: ignore[method-assign]
    return v
