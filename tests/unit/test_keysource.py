"""Where the master key comes from (appliance.keysource): the config value, each
source's load and store, and the locked daemon's unlock socket (appliance.unlocking)
driven through a real unix socket."""
import os
import stat
import threading
from pathlib import Path

import pytest

from strongroom import config as configmod
from strongroom.appliance import keysource, unlocking
from strongroom.appliance.keysource import (CredentialSource, FileSource, KeyUnavailable,
                                            PassphraseSource, write_key_file)

KEY = bytes(range(32))


def config_with(tmp_path: Path, source: str | None) -> configmod.Config:
    line = "" if source is None else f'[keys]\nmaster_key_source = "{source}"\n'
    (tmp_path / "strongroom.toml").write_text(line)
    return configmod.load(tmp_path)


@pytest.mark.parametrize("value, kind, where", [
    (None, FileSource, "master.key"),
    ("", FileSource, "master.key"),
    ("file:/etc/strongroom/master.key", FileSource, "/etc/strongroom/master.key"),
    ("file:keys/m.key", FileSource, "keys/m.key"),
    ("passphrase", PassphraseSource, "master.key.sealed"),
    ("passphrase:other.sealed", PassphraseSource, "other.sealed"),
    ("systemd-credential:strongroom-master", CredentialSource, None),
])
def test_the_config_names_the_source(tmp_path, value, kind, where):
    source = keysource.from_config(config_with(tmp_path, value))
    assert type(source) is kind
    if where is not None:     # relative paths are inside the data directory
        assert source.path == (tmp_path / where).resolve()


@pytest.mark.parametrize("value", ["file:", "files:/x", "passphrase:", "credential:x",
                                   "systemd-credential:", "systemd-credential:../etc/x",
                                   "systemd-credential:a/b", "tpm"])
def test_another_source_is_one_config_error_naming_file_and_option(tmp_path, value):
    with pytest.raises(configmod.ConfigError) as e:
        config_with(tmp_path, value)
    message = str(e.value)
    assert str(tmp_path / "strongroom.toml") in message
    assert "keys.master_key_source" in message and "\n" not in message


def test_file_source_loads_stores_and_says_what_is_wrong(tmp_path):
    source = FileSource(tmp_path / "master.key")
    with pytest.raises(KeyUnavailable, match="does not exist"):
        source.load()
    source.store(KEY)
    assert source.load() == KEY
    assert stat.S_IMODE(os.stat(source.path).st_mode) == 0o600
    source.path.write_bytes(KEY[:31])
    with pytest.raises(KeyUnavailable, match="exactly 32 bytes, it holds 31"):
        source.load()


def test_credential_source_reads_the_directory_systemd_gives(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "sr-master").write_bytes(KEY)
    source = CredentialSource("sr-master", {"CREDENTIALS_DIRECTORY": str(creds)})
    assert source.load() == KEY
    assert source.describe() == "systemd credential sr-master"


def test_credential_source_without_the_variable_or_the_file_says_what_to_do(tmp_path):
    unset = CredentialSource("sr-master", {})
    with pytest.raises(KeyUnavailable) as e:
        unset.load()
    assert "$CREDENTIALS_DIRECTORY is not set" in str(e.value)
    assert "systemd-run --pipe --wait -p LoadCredentialEncrypted=sr-master:" in str(e.value)
    missing = CredentialSource("sr-master", {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    with pytest.raises(KeyUnavailable, match="no credential sr-master in"):
        missing.load()


def test_credential_source_store_writes_nothing_and_says_how(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = CredentialSource("sr-master", {})
    assert not source.writable
    with pytest.raises(KeyUnavailable) as e:
        source.store(KEY)
    assert "systemd-creds encrypt --name=sr-master" in str(e.value)
    assert "--new-key-to FILE" in str(e.value)
    assert list(tmp_path.iterdir()) == []      # no key left on any disk by us


def test_write_key_file_is_0600_and_never_overwrites(tmp_path):
    target = tmp_path / "new.key"
    write_key_file(target, KEY)
    assert target.read_bytes() == KEY
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    with pytest.raises(KeyUnavailable, match="exists"):
        write_key_file(target, b"\x01" * 32)
    assert target.read_bytes() == KEY


class Asker:
    """A passphrase provider that counts how often it was asked."""

    def __init__(self, passphrase: str) -> None:
        self.passphrase, self.asked = passphrase, 0

    def __call__(self) -> str:
        self.asked += 1
        return self.passphrase


@pytest.fixture
def sealed_file(tmp_path) -> Path:
    path = tmp_path / "master.key.sealed"
    path.write_bytes(keysource.seal_master_key(KEY, "correct horse"))
    return path


def test_passphrase_source_asks_once_and_only_when_the_key_is_needed(sealed_file):
    ask = Asker("correct horse")
    source = PassphraseSource(sealed_file, ask)
    source.present()
    assert ask.asked == 0
    assert source.load() == KEY and source.load() == KEY
    assert ask.asked == 1


def test_passphrase_source_wrong_passphrase_is_one_line_naming_the_file(sealed_file):
    source = PassphraseSource(sealed_file, Asker("wrong horse"))
    with pytest.raises(KeyUnavailable) as e:
        source.load()
    assert str(e.value) == f"wrong passphrase for the master key ({sealed_file})"


def test_passphrase_source_store_seals_a_new_key_with_the_same_passphrase(sealed_file):
    source = PassphraseSource(sealed_file, Asker("correct horse"))
    source.load()
    new = os.urandom(32)
    source.store(new)
    assert stat.S_IMODE(os.stat(sealed_file).st_mode) == 0o600
    assert source.load() == new
    assert PassphraseSource(sealed_file, Asker("correct horse")).load() == new
    assert not [p for p in sealed_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_passphrase_source_without_a_way_to_ask(sealed_file, tmp_path):
    with pytest.raises(KeyUnavailable, match="none was given"):
        PassphraseSource(sealed_file).load()
    with pytest.raises(KeyUnavailable, match="does not exist"):
        PassphraseSource(tmp_path / "nothing.sealed").present()
    (tmp_path / "junk.sealed").write_bytes(b"not json")
    with pytest.raises(KeyUnavailable, match="not a Strongroom sealed key file"):
        PassphraseSource(tmp_path / "junk.sealed", Asker("x")).load()


def test_passphrase_file_is_its_first_line(tmp_path):
    path = tmp_path / "pass"
    path.write_text("  spaces kept  \nsecond line\n")
    assert keysource.read_passphrase_file(path) == "  spaces kept  "
    path.write_text("\n")
    with pytest.raises(KeyUnavailable, match="is empty"):
        keysource.read_passphrase_file(path)
    with pytest.raises(KeyUnavailable, match="cannot read the passphrase file"):
        keysource.read_passphrase_file(tmp_path / "none")


# -- the unlock socket ---------------------------------------------------------------

class Locked(threading.Thread):
    """wait_unlocked in a thread, as the daemon runs it on its main thread."""

    def __init__(self, data_dir: Path, source: PassphraseSource) -> None:
        super().__init__(daemon=True)
        self.data_dir, self.source = data_dir, source
        self.stopping: list[int] = []
        self.result: bool | None = None

    def run(self) -> None:
        self.result = unlocking.wait_unlocked(self.data_dir, self.source, self.stopping)

    def started(self) -> "Locked":
        self.start()
        path = unlocking.socket_path(self.data_dir)
        for _ in range(200):            # bounded: 10 s
            try:
                if stat.S_ISSOCK(path.stat().st_mode):
                    return self
            except FileNotFoundError:
                pass
            threading.Event().wait(0.05)
        raise AssertionError("the unlock socket did not appear")


def test_unlock_socket_refuses_a_wrong_passphrase_then_opens(sealed_file, tmp_path):
    source = PassphraseSource(sealed_file)
    (tmp_path / "run").mkdir(mode=0o755)            # loosened: made 0700 again
    (tmp_path / "run" / "unlock.sock").write_text("stale")
    locked = Locked(tmp_path, source).started()
    path = unlocking.socket_path(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    answer = unlocking.send(tmp_path, "wrong horse")
    assert answer == f"error wrong passphrase for the master key ({sealed_file})"
    assert locked.is_alive()
    assert unlocking.send(tmp_path, "correct horse") == unlocking.OK
    locked.join(10)
    assert locked.result is True and source.load() == KEY
    assert not path.exists()


def test_unlock_socket_bounds_the_request_and_stops_on_a_signal(sealed_file, tmp_path):
    import socket
    locked = Locked(tmp_path, PassphraseSource(sealed_file)).started()
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(30)
        conn.connect(str(unlocking.socket_path(tmp_path)))
        try:
            conn.sendall(b"x" * (unlocking.MAX_REQUEST + 10))
        except OSError:
            pass    # the daemon may close before all is sent
        answer = conn.recv(200).decode()
    assert answer.startswith("error a passphrase line longer than")
    locked.stopping.append(15)
    locked.join(10)
    assert locked.result is False
    assert not unlocking.socket_path(tmp_path).exists()


def test_a_directory_in_the_unlock_sockets_place_is_one_clear_line(tmp_path):
    (tmp_path / "run" / "unlock.sock").mkdir(parents=True)
    source = PassphraseSource(tmp_path / "sealed")
    with pytest.raises(KeyUnavailable, match="cannot make the unlock socket .*remove what is"):
        unlocking.wait_unlocked(tmp_path, source, [])
