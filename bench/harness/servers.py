"""The servers a benchmark compares: Strongroom, and the peers it is measured against
(Apache mod_dav for WebDAV, OpenSSH's internal-sftp for SFTP), each started on a free
127.0.0.1 port with its own configuration in the benchmark's temporary directory."""
import getpass
import os
import re
import shutil
import subprocess
import sys
import time

from .procs import (PASSWORD, REPO, USER, cpu_seconds, descendants, free_port, reset_hwm, run,
                    wait_port)

APACHE_MODULES = ("mpm_event", "authz_core", "authn_core", "authn_file", "auth_basic",
                  "authz_user", "socache_shmcb", "ssl", "dav", "dav_fs")
SSHD = "/usr/sbin/sshd"


class Server:
    """One server process on 127.0.0.1:port; subclasses say how to start it."""
    name = ""
    banner = b""                # what the server sends first (SSH), if anything
    proc: subprocess.Popen | None = None
    port: int
    log_path = os.devnull
    env: dict | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command(), env=self.env, cwd=REPO, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc, banner=self.banner)

    def cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the server and of its children, live or reaped."""
        return cpu_seconds([self.proc.pid, *descendants(self.proc.pid)])

    def rss_pids(self) -> list[int]:
        """Processes whose peak RSS counts for a row."""
        return [self.proc.pid, *descendants(self.proc.pid)]

    def rss_label(self) -> str:
        return "all processes"

    def row_started(self) -> None:
        pass

    def row_finished(self) -> None:
        pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Strongroom(Server):
    """A daemon with its own data directory: one client 'bench', one user USER with
    PASSWORD (and `key_pub` if given), the toml changed by `settings` (SECTION.KEY=VALUE)."""
    name = "Strongroom"

    def __init__(self, tmp: str, protocol: str, settings=(), key_pub: str = "",
                 patches: str = ""):
        self.data, self.patches = os.path.join(tmp, "strongroom"), patches
        self.webdav_port, self.sftp_port = free_port(), free_port()
        self.port = self.sftp_port if protocol == "sftp" else self.webdav_port
        self.banner = b"SSH-" if protocol == "sftp" else b""
        self.cli = [sys.executable, "-m", "strongroom.appliance.cli"]
        self.env = dict(os.environ, STRONGROOM_DATA_DIR=self.data)
        self.env["PYTHONPATH"] = REPO + os.pathsep + self.env.get("PYTHONPATH", "")
        self.admin("init", "--webdav-port", str(self.webdav_port),
                   "--sftp-port", str(self.sftp_port))
        self.admin("client", "add", "bench")
        self.admin("user", "add", USER, "--client", "bench", "--password-stdin", "--no-totp",
                   "--json", input=PASSWORD + "\n")
        if key_pub:
            self.admin("user", "key", "add", USER, "--file", key_pub)
        for item in settings:
            set_toml(os.path.join(self.data, "strongroom.toml"), item)
        self.cert = os.path.join(self.data, "tls", "cert.pem")
        self.key = os.path.join(self.data, "tls", "key.pem")
        self.host_key_pub = os.path.join(self.data, "ssh", "ssh_host_ed25519_key.pub")
        self.log_path = os.path.join(tmp, "strongroom-serve.log")
        self.login, self.hwm_reset = USER, False

    def admin(self, *args, **kw) -> subprocess.CompletedProcess:
        return run(*self.cli, *args, env=self.env, cwd=REPO, **kw)

    def command(self) -> list[str]:
        if self.patches:  # experimental monkeypatches, see sftp_patches.py
            return [sys.executable, os.path.join(REPO, "bench", "sftp_patches.py"),
                    self.patches, "serve"]
        return [*self.cli, "serve"]

    def row_started(self) -> None:
        self.hwm_reset = reset_hwm(self.proc.pid)

    def rss_label(self) -> str:
        return "daemon" if self.hwm_reset else "daemon, since start"

    def report_errors(self) -> None:
        """Print the first error the daemon logged, with what follows it (a traceback)."""
        if not os.path.exists(self.log_path):
            return
        lines = open(self.log_path, errors="replace").read().splitlines()
        errors = [i for i, line in enumerate(lines) if "Traceback" in line or " ERROR " in line]
        if not errors:
            return
        first = lines[errors[0]:errors[0] + 120]
        # up to the exception's own line: the first unindented one after 'Traceback'
        tb = next((i for i, line in enumerate(first) if line.startswith("Traceback")), None)
        end = next((i for i, line in enumerate(first) if tb is not None and i > tb and
                    line[:1] not in (" ", "\t")), min(len(first), 30) - 1)
        print(f"\nStrongroom logged {len(errors)} error line(s); the first, with its traceback:")
        print("\n".join("  " + line[:200] for line in first[:end + 1]))


def set_toml(path: str, item: str) -> None:
    """Set SECTION.KEY=VALUE (int, bool or string) in a strongroom.toml, whether the key
    is written out, commented out ('# key = default') or absent from its section."""
    dotted, _, value = item.partition("=")
    section, _, key = dotted.partition(".")
    if not (section and key and value):
        raise SystemExit(f"--set wants section.key=value, not {item!r}")
    literal = value if re.fullmatch(r"-?\d+|true|false", value) else f'"{value}"'
    lines, current, at = open(path).read().splitlines(), None, None
    for i, line in enumerate(lines):
        m = re.match(r"\s*\[(\w+)\]", line)
        if m:
            current = m.group(1)
            at = i + 1 if current == section else at
        elif current == section and re.match(rf"\s*#?\s*{re.escape(key)}\s*=", line):
            lines[i], at = f"{key} = {literal}", -1
            break
    if at is None:
        lines += ["", f"[{section}]", f"{key} = {literal}"]
    elif at >= 0:
        lines.insert(at, f"{key} = {literal}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# -- the peers --------------------------------------------------------------------

class Apache(Server):
    name = "Apache"

    def __init__(self, tmp: str, cert: str, key: str):
        self.root, self.port = os.path.join(tmp, "apache"), free_port()
        dav, run_dir, lock = (os.path.join(self.root, d) for d in ("dav", "run", "lock"))
        for d in (dav, run_dir, lock):
            os.makedirs(d, exist_ok=True)
        self.binary = shutil.which("apache2") or shutil.which("httpd")
        if self.binary is None:
            raise SystemExit("apache2 not found: apt-get install -y apache2")
        htpasswd = os.path.join(self.root, "htpasswd")
        run("htpasswd", "-cb", htpasswd, USER, PASSWORD)  # Debian default: apr1 (MD5)
        as_root = os.geteuid() == 0
        if as_root:  # workers drop to www-data; it must own the DAV tree
            for d in (dav, lock):
                shutil.chown(d, "www-data", "www-data")
            os.chmod(self.root, 0o755)
            os.chmod(tmp, 0o755)
        self.conf = os.path.join(self.root, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(self._config(dav, run_dir, htpasswd, cert, key, as_root))
        run(self.binary, "-t", "-f", self.conf)

    def _config(self, dav, run_dir, htpasswd, cert, key, as_root) -> str:
        loads = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so"
                          for m in APACHE_MODULES)
        return f"""{loads}
ServerRoot "{self.root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port} https
PidFile "{run_dir}/httpd.pid"
DefaultRuntimeDir "{run_dir}"
Mutex file:{run_dir} default
ErrorLog "{self.root}/error.log"
LogLevel warn
{"User www-data" if as_root else ""}
{"Group www-data" if as_root else ""}
StartServers 2
ServerLimit 16
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 1000
KeepAliveTimeout 15
Timeout 300
LimitRequestBody 0
SSLSessionCache "shmcb:{run_dir}/ssl_scache(512000)"
SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1
SSLEngine on
SSLCertificateFile "{cert}"
SSLCertificateKeyFile "{key}"
DavLockDB "{self.root}/lock/DavLock"
DocumentRoot "{dav}"
<Directory "{dav}">
    Dav On
    AuthType Basic
    AuthName "bench"
    AuthBasicProvider file
    AuthUserFile "{htpasswd}"
    Require valid-user
</Directory>
"""

    def command(self) -> list[str]:
        return [self.binary, "-f", self.conf, "-DFOREGROUND"]

    def rss_label(self) -> str:
        return "sum of the listener and its workers"


class OpenSSH(Server):
    name, banner = "OpenSSH", b"SSH-"

    def __init__(self, tmp: str, client_pub: str):
        if not os.path.exists(SSHD):
            install_openssh_server()
        self.root = os.path.join(tmp, "openssh")
        self.files = os.path.join(self.root, "files")
        os.makedirs(self.files)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.port, self.login = free_port(), getpass.getuser()
        key = os.path.join(self.root, "ssh_host_ed25519_key")
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-host", "-f", key)
        self.host_key_pub = key + ".pub"
        authorized = os.path.join(self.root, "authorized_keys")
        shutil.copy(client_pub, authorized)
        self.conf = os.path.join(self.root, "sshd_config")
        with open(self.conf, "w") as f:
            f.write(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {key}\n"
                    f"PidFile {self.root}/sshd.pid\nAuthorizedKeysFile {authorized}\n"
                    f"AllowUsers {self.login}\n" + SSHD_OPTIONS +
                    f"Subsystem sftp internal-sftp -d {self.files}\n")
        self.log_path = os.path.join(self.root, "sshd.log")

    def command(self) -> list[str]:
        return [SSHD, "-D", "-e", "-f", self.conf]

    def rss_pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def row_finished(self) -> None:
        """Wait (bounded) until the connections' processes are reaped: then their CPU
        time is in the listener's cumulative children times."""
        deadline = time.monotonic() + 5
        while descendants(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def rss_label(self) -> str:
        return "sshd per-connection procs"


SSHD_OPTIONS = """PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 64
MaxSessions 64
LogLevel INFO
"""


def install_openssh_server() -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"{SSHD} is missing: apt-get install -y openssh-server")
    print("installing openssh-server (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300, capture_output=True)
    run("apt-get", "install", "-y", "-qq", "openssh-server", env=env, timeout=600)
