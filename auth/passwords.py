"""argon2id password hashing (argon2-cffi: the reference implementation's binding,
with safe parameter defaults and constant-time verification)."""
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Hash of a random string, verified against when an account does not exist so that
# a failed login costs the same time either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def check_policy(login: str, password: str) -> None:
    """Raise ValueError with a reason if `password` is too weak to accept."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password must be at least {MIN_LENGTH} characters")
    if login.lower() in password.lower():
        raise ValueError("password must not contain the login")
