"""App passwords: long random per-device secrets for clients that cannot ask for a
TOTP code on every login (network drives). Only their SHA-256 is stored: with
about 150 random bits nothing can be searched, so a slow hash buys nothing."""
import hashlib
import secrets

PREFIX = "sr-"
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"   # no 0/o, 1/l/i: read aloud or typed
GROUPS, GROUP_LEN = 6, 5


def generate() -> str:
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(GROUP_LEN))
              for _ in range(GROUPS))
    return PREFIX + "-".join(groups)


def looks_like(secret: str) -> bool:
    return secret.startswith(PREFIX) and len(secret) == len(PREFIX) + GROUPS * (GROUP_LEN + 1) - 1


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
