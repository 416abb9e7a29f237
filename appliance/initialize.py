"""`strongroom init`: everything a data directory needs, made once and never overwritten."""
import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

import config as configmod
from appliance.db import Database, default_url, upgrade
from providers.keys import create_master_key


def initialize(data_dir: Path, settings: dict) -> list[str]:
    """Create config, master key, host keys, TLS certificate and database; return what was made."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = []
    cfg_path = data_dir / "strongroom.toml"
    if not cfg_path.exists():
        _write_private(cfg_path, configmod.render_example(settings).encode())
        made.append(str(cfg_path))
    cfg = configmod.load(data_dir)
    steps = [
        (cfg.storage.master_key_file, create_master_key),
        (cfg.ssh.host_key_ed25519, _make_ed25519),
        (cfg.ssh.host_key_rsa, _make_rsa),
        (cfg.tls.key_file, lambda p: _make_tls(p, Path(cfg.tls.cert_file), _names(cfg))),
    ]
    for path, make in steps:
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            make(path)
            made.append(str(path))
    Path(cfg.storage.blob_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(cfg.database.url or default_url(data_dir))
    upgrade(db)
    db.dispose()
    return made


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _make_ed25519(path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    _write_ssh_key(path, key)


def _make_rsa(path: Path) -> None:
    _write_ssh_key(path, rsa.generate_private_key(public_exponent=65537, key_size=3072))


def _write_ssh_key(path: Path, key) -> None:
    _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                        serialization.PublicFormat.OpenSSH)
    Path(f"{path}.pub").write_bytes(pub + b"\n")


def _names(cfg) -> list[str]:
    names = [cfg.server.public_name, cfg.server.host, "localhost", "127.0.0.1"]
    return [n for i, n in enumerate(names) if n and n not in names[:i] and n not in ("0.0.0.0", "::")]


def _make_tls(key_path: Path, cert_path: Path, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom")])
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
