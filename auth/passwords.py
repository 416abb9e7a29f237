"""argon2id password hashing (argon2-cffi: the reference implementation's binding,
with safe parameter defaults and constant-time verification)."""
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Hash of a random string, verified against when an account does not exist so that
# a failed login costs the same time either way. Made on first use, not at import: it
# costs one hash (0.1 s), which most CLI commands never need; the daemon makes it at
# start (dummy_hash()), so that its first unknown login costs what the others do.
_DUMMY_HASH: str | None = None

MIN_LENGTH = 10
# The most common passwords of at least MIN_LENGTH characters in published breach
# lists, lower-cased; a password equal to one of them (ignoring case) is refused.
COMMON = frozenset("""
1234567890 0123456789 1q2w3e4r5t qwertyuiop 1qaz2wsx3edc password123 password12 password1!
passw0rd123 qwerty1234 qwerty12345 1234qwerty 123456789a abcd123456 iloveyou12 football12
letmein123 welcome123 changeme123 administrator sunshine123 princess12 superman12
trustno1234 zaq12wsxcde qazwsxedcrfv asdfghjkl1 1234554321 0987654321 1111111111 0000000000
abcdefghij password1234 welcome2024 welcome2025 welcome2026 summer2024 summer2025 winter2024
winter2025 spring2025 autumn2025 strongroom strongroom1 secret1234 mypassword monkey1234
dragon1234 baseball12 michael123 charlie123 computer12 master1234 access1234
""".split())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def dummy_hash() -> str:
    """The hash an unknown account's login is verified against (made once)."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
    return _DUMMY_HASH


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(stored_hash or dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password(login: str, length: int = 20) -> str:
    """A random password that passes check_policy for `login` (a short login can
    appear in a random string by chance: about 1 in 100 for a two-letter one)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if login.lower() not in password.lower():
            return password


def check_policy(login: str, password: str) -> None:
    """Raise ValueError with a reason if `password` is too weak to accept."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password must be at least {MIN_LENGTH} characters")
    if login.lower() in password.lower():
        raise ValueError("password must not contain the login")
    if password.lower() in COMMON:
        raise ValueError("password is one of the most common passwords; choose another")
