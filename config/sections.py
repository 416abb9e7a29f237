"""The types of the loaded settings, one class per section of `SCHEMA`.

Each attribute is what the option's converter returns; `loader` checks at import that
these names and the schema's are the same, so the two cannot drift. A section object
reads the Config's values when it is made (`cfg.storage` makes one per access).
"""
from strongroom.config.converters import Amount, Value
from strongroom.config.schema import SCHEMA


class Section:
    def __init__(self, values: dict[str, Value]) -> None:
        self.__dict__.update(values)


class Server(Section):
    host: str
    webdav_port: int
    sftp_port: int
    public_name: str


class Tls(Section):
    cert_file: str
    key_file: str


class Ssh(Section):
    host_key_ed25519: str
    host_key_rsa: str
    login_grace_time: float
    max_startups: int
    max_sessions: int
    max_startups_per_address: int


class Database(Section):
    url: str


class Storage(Section):
    backend: str
    blob_dir: str
    chunk_size: int
    master_key_file: str
    max_file_size: int
    reserve: Amount


class Keys(Section):
    master_key_source: str


class Webdav(Section):
    block_size: int
    threads: int
    lock_max: float
    max_header_size: int
    header_timeout: float
    max_unauthenticated_per_address: int


class Web(Section):
    enabled: bool
    session_idle: float
    session_lifetime: float
    invite_lifetime: float


class Mail(Section):
    host: str
    port: int
    security: str
    username: str
    password_file: str
    sender: str
    verify_certificate: bool


class Notify(Section):
    quiet_period: float
    ignore: tuple[str, ...]
    webhook_url: str
    webhook_secret_file: str


class Auth(Section):
    app_passwords_sftp: bool
    drive_session_idle: float
    drive_session_lifetime: float
    drive_session_ipv4_prefix: int
    drive_session_ipv6_prefix: int
    account_delay_after: int
    account_block_after: int
    address_delay_after: int
    address_block_after: int
    delay: float
    block_time: float
    block_max: float
    forget_after: float


class Audit(Section):
    anchor_file: str
    anchor_interval: float


class Retention(Section):
    keep_all: float
    max_age: float | None
    max_versions: int | None
    trash_days: float
    history_quota: int | None
    interval: float


class Log(Section):
    level: str
    format: str


class Metrics(Section):
    enabled: bool
    listen: str


SECTIONS: dict[str, type[Section]] = {
    "server": Server, "tls": Tls, "ssh": Ssh, "database": Database, "storage": Storage,
    "keys": Keys, "webdav": Webdav, "web": Web, "mail": Mail, "notify": Notify, "auth": Auth, "audit": Audit,
    "retention": Retention, "log": Log, "metrics": Metrics}

_drift = [name for name, cls in SECTIONS.items()
          if name not in SCHEMA or set(cls.__annotations__) != set(SCHEMA[name])]
if _drift or set(SECTIONS) != set(SCHEMA):
    raise RuntimeError(f"config.sections and config.schema differ in {_drift or 'sections'}")
