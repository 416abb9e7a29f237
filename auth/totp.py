"""TOTP (RFC 6238: 30 s steps, 6 digits, SHA-1 as every authenticator app expects)
secrets, provisioning URIs and code checks, via pyotp.

`matching_step` says which time step a code belongs to; the caller keeps the last
step it accepted per user and accepts only later ones, so a code works once.
"""
import time

import pyotp

ISSUER = "Strongroom"
STEP = 30
DIGITS = 6
WINDOW = 1   # steps either side of now: clocks drift, people type slowly


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, login: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=ISSUER)


def looks_like_code(text: str) -> bool:
    return len(text) == DIGITS and text.isascii() and text.isdigit()


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step within ±WINDOW of `now` whose code is `code`, or None."""
    if not looks_like_code(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    now = time.time() if now is None else now
    current = int(now // STEP)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if pyotp.utils.strings_equal(totp.at(step * STEP), code):
            return step
    return None


def qr_text(uri: str) -> str:
    """The otpauth URI as a QR code drawn with block characters, for a terminal."""
    import io

    import segno
    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()
