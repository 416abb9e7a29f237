"""Parsing and checking SSH public keys given as authorized_keys lines."""
import base64
import hashlib

ALLOWED = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
           "ssh-rsa")
MIN_RSA_BITS = 2048


def fingerprint(key_data: str) -> str:
    """OpenSSH's SHA256 fingerprint of a base64 public key blob."""
    digest = hashlib.sha256(base64.b64decode(key_data)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse(line: str) -> tuple[str, str, str | None]:
    """(type, base64 data, comment) of one authorized_keys line; ValueError if unusable."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError("expected an OpenSSH public key line: 'TYPE BASE64 [COMMENT]'")
    key_type, data = parts[0], parts[1]
    if key_type not in ALLOWED:
        raise ValueError(f"key type {key_type} is not accepted (use {', '.join(ALLOWED)})")
    import paramiko     # here: a CLI command that reads no key should not pay its import
    try:
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
    except Exception:
        raise ValueError("the key data is not a valid public key") from None
    if key_type == "ssh-rsa" and key.get_bits() < MIN_RSA_BITS:
        raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return key_type, data, parts[2] if len(parts) > 2 else None
