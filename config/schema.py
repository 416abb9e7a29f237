"""The configuration schema: section -> option -> (default, converter, help).

Relative paths are resolved against the data directory by the loader.
"""
import re
from dataclasses import dataclass
from typing import Callable

from strongroom.config import converters as conv


@dataclass(frozen=True)
class Option:
    default: str | int | bool | tuple[str, ...]    # as the TOML file would give it
    convert: Callable[[object], conv.Value]
    help: str
    is_path: bool = False


# A systemd credential's name: what LoadCredentialEncrypted=NAME:... accepts, so that
# $CREDENTIALS_DIRECTORY/NAME stays inside that directory.
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,254}")


def master_key_source(raw: object) -> str:
    """'' (the [storage] master_key_file), 'file:PATH', 'systemd-credential:NAME',
    'passphrase' or 'passphrase:PATH'; returned stripped. A relative PATH is inside the
    data directory (appliance.keysource resolves it)."""
    value = conv.string(raw).strip()
    kind, sep, arg = value.partition(":")
    if value in ("", "passphrase") or (sep and arg.strip() and kind in ("file", "passphrase")):
        return value
    if kind == "systemd-credential" and _CREDENTIAL_NAME.fullmatch(arg):
        return value
    raise ValueError("expected \"\" (the [storage] master_key_file), \"file:PATH\", "
                     "\"systemd-credential:NAME\", \"passphrase\" or \"passphrase:PATH\", "
                     f"got {raw!r}")


SCHEMA: dict[str, dict[str, Option]] = {
    "server": {
        "host": Option("127.0.0.1", conv.string, "Address both servers listen on."),
        "webdav_port": Option(8443, conv.port, "HTTPS port of the WebDAV server."),
        "sftp_port": Option(2222, conv.port, "Port of the SFTP (SSH) server."),
        "public_name": Option("", conv.string,
                              "Host name clients use, added to the TLS certificate (default: host)."),
    },
    "tls": {
        "cert_file": Option("tls/cert.pem", conv.string,
                            "PEM certificate (chain) for WebDAV; init makes a self-signed one.", True),
        "key_file": Option("tls/key.pem", conv.string, "PEM private key of cert_file.", True),
    },
    "ssh": {
        "host_key_ed25519": Option("ssh/ssh_host_ed25519_key", conv.string,
                                   "Ed25519 host key (OpenSSH format), made once by init.", True),
        "host_key_rsa": Option("ssh/ssh_host_rsa_key", conv.string,
                               "RSA host key for older clients, made once by init.", True),
        "login_grace_time": Option("2m", conv.positive_duration,
                                   "A connection that has not logged in this long after it "
                                   "was opened is closed (OpenSSH's LoginGraceTime)."),
        "max_startups": Option(100, conv.positive_int,
                               "Connections not logged in yet, in all; further ones are "
                               "closed at once (OpenSSH's MaxStartups)."),
        "max_sessions": Option(10, conv.positive_int,
                               "Channels (SFTP sessions) one logged-in connection may have "
                               "open at once (OpenSSH's MaxSessions); its open files and "
                               "folders, 256 at most, are counted over all of them."),
        "max_startups_per_address": Option(20, conv.positive_int,
                                           "Connections not logged in yet from one address; "
                                           "further ones from it are closed at once."),
    },
    "database": {
        "url": Option("", conv.string,
                      "SQLAlchemy URL, e.g. postgresql+psycopg2://user:pw@host/db. "
                      "Empty: SQLite file strongroom.db in the data directory."),
    },
    "storage": {
        "backend": Option("local", conv.string,
                          "Where encrypted file versions are kept: local (files under "
                          "blob_dir)."),
        "blob_dir": Option("blobs", conv.string, "Where encrypted file versions are stored.", True),
        "chunk_size": Option(262144, conv.chunk_size,
                             "Plaintext bytes per authenticated AES-GCM chunk (64 KiB to 1 MiB)."),
        "master_key_file": Option("master.key", conv.string,
                                  "The master key (32 random bytes, mode 0600), made by init.", True),
        "max_file_size": Option("1TiB", conv.positive_size,
                                "Largest file a client may upload or extend (a write past it "
                                "fails; WebDAV answers 413)."),
        "reserve": Option("5%", conv.size_or_percent,
                          "Free space kept on the blob file system: uploads are refused, "
                          "and stopped mid-way, below it (a size or a share of the disk)."),
    },
    "keys": {
        "master_key_source": Option(
            "", master_key_source,
            "Where the master key comes from. Empty: the file [storage] master_key_file. "
            "file:PATH: 32 bytes in PATH, e.g. file:/etc/strongroom/master.key, off the data "
            "disk. systemd-credential:NAME: $CREDENTIALS_DIRECTORY/NAME, given by the unit's "
            "LoadCredentialEncrypted=NAME:... (sealed by systemd-creds with the TPM or the "
            "host key). passphrase (or passphrase:PATH): sealed by a passphrase in "
            "master.key.sealed (or PATH); the daemon starts locked until 'strongroom "
            "unlock'. Relative paths are inside the data directory."),
    },
    "webdav": {
        "block_size": Option(1048576, conv.positive_int,
                             "Bytes read from or written to a request body at a time."),
        "threads": Option(32, conv.positive_int, "Worker threads of the HTTPS server."),
        "lock_max": Option("1h", conv.positive_duration,
                           "The longest a WebDAV lock lives without a refresh (a client "
                           "asking for longer, or for Infinite, gets this and refreshes)."),
        "max_header_size": Option("128KiB", conv.positive_size,
                                  "The most a request line and its headers may hold together "
                                  "(413 beyond it)."),
        "header_timeout": Option("20s", conv.positive_duration,
                                 "Time a connection gets for the TLS handshake and for the "
                                 "request line and headers of each request (then 408, closed)."),
        "max_unauthenticated_per_address": Option(
            20, conv.positive_int,
            "Connections from one address that have not yet carried a logged-in request; "
            "further ones from it are closed at once. Network drives open several per "
            "mount; raise it when many users share one address (NAT)."),
    },
    "web": {
        "enabled": Option(True, conv.boolean,
                          "Serve the web portal for browser users at /web/ on the WebDAV port."),
        "session_idle": Option("30m", conv.positive_duration,
                               "A portal session ends after this long without a request."),
        "session_lifetime": Option("12h", conv.positive_duration,
                                   "A portal session ends this long after its login, used or not."),
        "invite_lifetime": Option("72h", conv.positive_duration,
                                  "How long an invitation link (user add --invite) stays valid."),
    },
    "mail": {
        "host": Option("", conv.host_name,
                       "SMTP server that sends the notification and security emails. "
                       "Empty: no mail is sent."),
        "port": Option(587, conv.remote_port,
                       "Its port: 587 (submission, starttls), 465 (tls) or 25."),
        "security": Option("starttls", conv.choice("starttls", "tls", "none"),
                           "starttls: plain connection upgraded by STARTTLS, refused if the "
                           "server does not offer it; tls: TLS from the start (port 465); "
                           "none: no encryption, only for a relay on this machine."),
        "username": Option("", conv.string,
                           "Login at the SMTP server; empty: send without logging in."),
        "password_file": Option("", conv.string,
                                "File holding the SMTP password (one line, mode 0600), "
                                "read at each connection.", True),
        "sender": Option("", conv.mail_address,
                         "From address of the emails, e.g. 'Firm files "
                         "<files@firm.example>'; needed when host is set."),
        "verify_certificate": Option(True, conv.boolean,
                                     "Verify the server's TLS certificate and host name "
                                     "against the system's trusted authorities; false "
                                     "accepts any certificate (a man in the middle too)."),
    },
    "notify": {
        "quiet_period": Option("5m", conv.duration,
                               "A digest about a client's tree waits until nothing has "
                               "changed in that tree for this long."),
        "ignore": Option(("~$*", "~*.tmp", ".~lock.*#", "*.part", "*.crdownload", "._*",
                          ".DS_Store", "Thumbs.db", "desktop.ini"), conv.name_patterns,
                         "File names (glob patterns) of editor and system litter: never "
                         "notified, and only their latest content kept. Setting this "
                         "replaces the whole list."),
        "webhook_url": Option("", conv.web_url,
                              "Empty, or a URL that receives each batch of notifications "
                              "as a JSON POST."),
        "webhook_secret_file": Option("", conv.string,
                                      "File holding the key of the webhook's "
                                      "X-Strongroom-Signature (HMAC-SHA256).", True),
    },
    "auth": {
        "app_passwords_sftp": Option(False, conv.boolean,
                                     "Accept app passwords for SFTP too (always for WebDAV)."),
        "drive_session_idle": Option("12h", conv.duration,
                                     "A WebDAV drive session opened with password+code ends "
                                     "after this long unused."),
        "drive_session_lifetime": Option("7d", conv.duration,
                                         "A drive session ends this long after it was opened, used or not."),
        "drive_session_ipv4_prefix": Option(24, conv.prefix_length(32),
                                            "A drive session works only from the network it "
                                            "was opened from: IPv4 prefix length."),
        "drive_session_ipv6_prefix": Option(64, conv.prefix_length(128),
                                            "The same for IPv6."),
        "account_delay_after": Option(3, conv.non_negative_int,
                                      "Failed logins of one account before each further "
                                      "attempt is delayed."),
        "account_block_after": Option(10, conv.positive_int,
                                      "Failed logins of one account before it is blocked "
                                      "(doubling each time; 'strongroom user unlock')."),
        "address_delay_after": Option(10, conv.non_negative_int,
                                      "Failed logins from one address before delaying it."),
        "address_block_after": Option(30, conv.positive_int,
                                      "Failed logins from one address before blocking it."),
        "delay": Option("1s", conv.duration, "How long a delayed attempt waits."),
        "block_time": Option("1m", conv.duration, "The first block; doubles per failure."),
        "block_max": Option("1h", conv.duration, "The longest block."),
        "forget_after": Option("1h", conv.duration,
                               "Failures older than this (and not blocking) are forgotten."),
    },
    "audit": {
        "anchor_file": Option("audit-anchor.json", conv.string,
                              "Where the audit chain's newest event is anchored outside the "
                              "database (also written to the log); keep a copy elsewhere.",
                              True),
        "anchor_interval": Option("1m", conv.positive_duration,
                                  "How often the daemon anchors the audit chain when it grew."),
    },
    "retention": {
        "keep_all": Option("2d", conv.period,
                           "Every version of a file younger than this is kept; older ones "
                           "are thinned: one per hour for a day after that, one per day up "
                           "to 30 days, then one per week."),
        "max_age": Option("none", conv.optional(conv.period),
                          "Versions older than this are removed (none: the weekly ones are "
                          "kept forever). The two newest versions of a file and pinned "
                          "ones are always kept."),
        "max_versions": Option("none", conv.optional(conv.count),
                               "The most versions kept of one file (none: no limit); the "
                               "oldest go first."),
        "trash_days": Option(30, conv.days_or_period,
                             "Deleted files and folders are kept in the trash this long "
                             "(days, or a duration such as '12h'), then purged with their "
                             "versions."),
        "history_quota": Option("none", conv.optional(conv.budget),
                                "The most bytes a client's old versions and trash may take "
                                "together (e.g. '5GiB'; none: no budget); beyond it the "
                                "oldest unpinned go first. Current files count against the "
                                "client's quota, not this."),
        "interval": Option("15m", conv.period,
                           "How often the daemon runs retention, trash expiry and the "
                           "removal of unreferenced blobs."),
    },
    "log": {
        "level": Option("info", conv.log_level, "One of debug, info, warning, error."),
        "format": Option("text", conv.choice("text", "json"),
                         "text: one readable line per event; json: one JSON object per "
                         "line (time, level, logger, message and the event's fields)."),
    },
    "metrics": {
        "enabled": Option(False, conv.boolean,
                          "Serve Prometheus metrics at /metrics (requests, logins, bytes, "
                          "sessions, upload durations). Anyone who reaches the port reads "
                          "them: prefer a loopback listen address."),
        "listen": Option("", conv.listen_address,
                         "Empty: /metrics on the WebDAV port; or HOST:PORT (e.g. "
                         "127.0.0.1:9102) for a separate plain-HTTP listener."),
    },
}
