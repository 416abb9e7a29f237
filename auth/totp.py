"""TOTP (RFC 6238) secrets and provisioning URIs, via pyotp."""
import pyotp

ISSUER = "Strongroom"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, login: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=ISSUER)
