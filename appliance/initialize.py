"""`strongroom init`: everything a data directory needs, made once and never overwritten."""
import datetime
import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from strongroom import config as configmod
from strongroom.appliance import keysource
from strongroom.appliance.db import Database, default_url, upgrade
from strongroom.appliance.errors import BadRequest, Conflict, Unavailable
from strongroom.config import Config
from strongroom.providers.fsutil import write_new_private
from strongroom.providers import crypto
from strongroom.providers.keys import create_master_key


# What init is given: {section: {option: value}}, values as the TOML file holds them.
Settings = dict[str, dict[str, object]]


class Initialized(TypedDict):
    created: list[str]                   # paths made
    changed: dict[str, list[object]]     # "[server] option": [old, new]
    certificate: str | None              # what was done about the certificate, if anything


def initialize(data_dir: Path, settings: Settings, given: tuple[str, ...] = (),
               ask: keysource.Ask | None = None) -> Initialized:
    """Create config, master key, host keys, TLS certificate and database. Run again,
    write the [server] options named in `given` into the existing config, and make a
    new self-signed certificate if the names it must carry changed. Return
    {"created": [paths], "changed": {option: [old, new]}, "certificate": str|None}.
    settings["keys"]["master_key_source"], for a new data directory only, puts the
    master key elsewhere (file:PATH, never overwritten) or seals it by the passphrase
    `ask` gives (asked before anything is made)."""
    data_dir = Path(data_dir).resolve()
    cfg_path = data_dir / "strongroom.toml"
    ask = _once(ask)
    _check_key_choice(data_dir, cfg_path, settings, ask)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    made: list[str] = []
    changed: dict[str, tuple[object, object]] = {}
    certificate = None
    if not cfg_path.exists():
        _write_config(data_dir, cfg_path, _first_config(settings).encode())
        made.append(str(cfg_path))
    elif given:
        changed = configmod.set_options(data_dir, "server",
                                        {n: settings["server"][n] for n in given})
    cfg = configmod.load(data_dir)
    if {"host", "public_name"} & set(changed):
        certificate = _renew_own_certificate(cfg)
    made += _make_master_key(keysource.from_config(cfg, ask))
    steps: list[tuple[str, Callable[[Path], None]]] = [
        (cfg.ssh.host_key_ed25519, _make_ed25519),
        (cfg.ssh.host_key_rsa, _make_rsa),
        (cfg.tls.key_file, lambda p: _make_tls(p, Path(cfg.tls.cert_file), _names(cfg))),
    ]
    for name, make in steps:
        path = Path(name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            make(path)
            made.append(str(path))
    Path(cfg.storage.blob_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(cfg.database.url or default_url(data_dir))
    upgrade(db)
    db.dispose()
    return {"created": made, "changed": {f"[server] {n}": list(v) for n, v in changed.items()},
            "certificate": certificate}


def _check_key_choice(data_dir: Path, cfg_path: Path, settings: Settings,
                      ask: keysource.Ask | None) -> None:
    """Refuse a key choice init cannot honour before anything is made: a key file
    that exists (never overwritten), another choice than an existing config's, a
    passphrase that cannot be had."""
    wanted = str(settings.get("keys", {}).get("master_key_source", "") or "")
    if not wanted:
        return
    if cfg_path.exists():
        current = configmod.load(data_dir).get("keys", "master_key_source")
        if current != wanted:
            raise Conflict(f"{data_dir} is made already, its master key from "
                           f"[keys] master_key_source = {current!r} in {cfg_path}: init "
                           "chooses where the key lives only for a new data directory")
        return
    source = keysource.named(wanted, data_dir, data_dir / "master.key", ask)
    if isinstance(source, keysource.FileSource) and source.path.exists():
        raise Conflict(f"{source.path} exists: init never overwrites a master key; "
                       "remove it or name another path")
    if isinstance(source, keysource.PassphraseSource):
        if ask is None:
            raise BadRequest("a master key sealed by a passphrase needs the passphrase")
        ask()


def _once(ask: keysource.Ask | None) -> keysource.Ask | None:
    """`ask`, asking only the first time (init's early check and the key it makes)."""
    if ask is None:
        return None
    asked: list[str] = []
    inner = ask

    def once() -> str:
        if not asked:
            asked.append(inner())
        return asked[0]
    return once


def _make_master_key(source: keysource.KeySource) -> list[str]:
    """Make the master key where `source` keeps it, unless it is there; [path] if made.
    A systemd credential is sealed by systemd-creds, not here (README)."""
    make: Callable[[Path], None]
    if isinstance(source, keysource.FileSource):
        path, make = source.path, create_master_key
    elif isinstance(source, keysource.PassphraseSource):
        path, make = source.path, lambda p: _make_sealed(p, source)
    else:
        return []
    if path.exists():
        return []
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        make(path)
    except OSError as e:
        raise Unavailable(f"cannot write the master key {path}: {e.strerror}") from None
    return [str(path)]


def _make_sealed(path: Path, source: keysource.PassphraseSource) -> None:
    """A new master key, sealed by the source's passphrase, in `path` (0600, new)."""
    write_new_private(path, keysource.seal_master_key(crypto.new_key(), source.passphrase()))


# Where init puts the keys and data it makes: a new config sets these (besides the
# [server] options init was given), so that a later release moving a default cannot
# make an installation lose its master key, host keys, certificate or blobs.
_MADE_BY_INIT = {"tls": ("cert_file", "key_file"), "ssh": ("host_key_ed25519", "host_key_rsa"),
                 "storage": ("master_key_file", "blob_dir")}


def _first_config(settings: Settings) -> str:
    """The new config file: `settings` and the paths of what init makes are set, every
    other option is commented out at its default."""
    values: Settings = {section: {name: configmod.SCHEMA[section][name].default for name in names}
              for section, names in _MADE_BY_INIT.items()}
    for section, options in settings.items():
        values.setdefault(section, {}).update(options)
    return configmod.render_example(values)


def _renew_own_certificate(cfg: Config) -> str:
    """A new self-signed certificate for the names of `cfg`, if the one there is the
    one init made; an admin's own certificate is kept. Returns what was done."""
    cert_path, key_path = Path(cfg.tls.cert_file), Path(cfg.tls.key_file)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return f"kept {cert_path}: not readable as a certificate"
    ours = cert.issuer == cert.subject and any(
        a.value == "Strongroom" for a in cert.subject.get_attributes_for_oid(
            NameOID.ORGANIZATION_NAME))
    names = _names(cfg)
    if not ours:
        return f"kept your certificate {cert_path}: make sure it names {', '.join(names)}"
    for p in (key_path, cert_path):
        p.replace(p.with_name(p.name + ".old"))
    _make_tls(key_path, cert_path, names)
    return f"made a new self-signed certificate for {', '.join(names)} (the old one: .old)"


def _write_config(data_dir: Path, path: Path, data: bytes) -> None:
    """The first config file, written only if it loads (a bad option given to init
    leaves no file behind that every later command would trip over)."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    _write_private(tmp, data)
    try:
        configmod.load(data_dir, tmp)
    except configmod.ConfigError as e:
        tmp.unlink()
        raise configmod.ConfigError(str(e).replace(str(tmp), str(path))) from None
    os.replace(tmp, path)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _make_ed25519(path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    _write_ssh_key(path, key)


def _make_rsa(path: Path) -> None:
    _write_ssh_key(path, rsa.generate_private_key(public_exponent=65537, key_size=3072))


def _write_ssh_key(path: Path, key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> None:
    _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                        serialization.PublicFormat.OpenSSH)
    Path(f"{path}.pub").write_bytes(pub + b"\n")


def _names(cfg: Config) -> list[str]:
    names = [cfg.server.public_name, cfg.server.host, "localhost", "127.0.0.1"]
    return [n for i, n in enumerate(names) if n and n not in names[:i] and n not in ("0.0.0.0", "::")]


def _make_tls(key_path: Path, cert_path: Path, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom")])
    sans: list[x509.GeneralName] = []
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
