"""Signing keys: the tenant's token-signing key, the channel's key, external issuers' keys."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from emulator.identity.common import b64url

__all__ = ["SigningKey", "decode_signed", "new_key", "sign"]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": public["n"],
            "e": public["e"],
        }


def new_key() -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Entra's kid is the base64url SHA-1 thumbprint of the signing certificate; a hash of the
    # public key gives ids of the same look.
    kid = b64url(hashlib.sha1(der, usedforsecurity=False).digest())
    return SigningKey(kid=kid, private_key=private_key)


def sign(claims: Mapping[str, Any], key: SigningKey) -> str:
    return jwt.encode(
        dict(claims),
        key.private_key,
        algorithm="RS256",
        headers={"kid": key.kid, "x5t": key.kid, "typ": "JWT"},
    )


def decode_signed(token: str, keys: Iterable[SigningKey]) -> dict[str, Any]:
    """Check the signature (RS256, known kid); raises ``jwt.InvalidTokenError``.

    Times, audience and issuer are left to the callers, which judge them against the right clock.
    """
    header = jwt.get_unverified_header(token)
    if header.get("alg") != "RS256":
        raise jwt.InvalidAlgorithmError("only RS256 tokens are issued here")
    key = next((k for k in keys if k.kid == header.get("kid")), None)
    if key is None:
        raise jwt.InvalidSignatureError("unknown signing key")
    return jwt.decode(
        token,
        key.private_key.public_key(),
        algorithms=["RS256"],
        options={
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": False,
            "verify_iss": False,
        },
    )
