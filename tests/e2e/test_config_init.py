"""The config file `strongroom init` writes, driven through the real CLI: only what init
chose is set, everything else is commented out at its default; init run again changes
one line; a file written by an earlier init (every option set) still loads unchanged."""
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from strongroom import config as configmod
from strongroom.config import SCHEMA

# What `strongroom init` of commit d1b9147 wrote: every option set to its default.
OLD_CONFIG = Path(__file__).parent / "data" / "strongroom-d1b9147.toml"
ADDED_SINCE = {("storage", "backend"), ("keys", "master_key_source"),
               *((section, name) for section in ("web", "mail", "notify", "retention")
                 for name in SCHEMA[section])}
MADE_BY_INIT = {"tls": {"cert_file": "tls/cert.pem", "key_file": "tls/key.pem"},
                "ssh": {"host_key_ed25519": "ssh/ssh_host_ed25519_key",
                        "host_key_rsa": "ssh/ssh_host_rsa_key"},
                "storage": {"master_key_file": "master.key", "blob_dir": "blobs"}}


def cli(data_dir, *args):
    return subprocess.run([sys.executable, "-m", "strongroom.appliance.cli", *args,
                           "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=120)


def init(data_dir, *args):
    r = cli(data_dir, "init", *args)
    assert r.returncode == 0, r.stderr
    return r


def effective(data_dir) -> dict:
    cfg = configmod.load(data_dir)
    return {(s, n): cfg.get(s, n) for s, options in SCHEMA.items() for n in options}


def test_init_sets_only_what_it_chose(tmp_path):
    data = tmp_path / "data"
    init(data, "--host", "127.0.0.1", "--sftp-port", "2200")
    text = (data / "strongroom.toml").read_text()
    server = {"host": "127.0.0.1", "webdav_port": 8443, "sftp_port": 2200, "public_name": ""}
    assert {s: t for s, t in tomllib.loads(text).items() if t} == {"server": server,
                                                                  **MADE_BY_INIT}
    for section, options in SCHEMA.items():
        for name, option in options.items():
            if name not in server and name not in MADE_BY_INIT.get(section, {}):
                shown = f"# {name} = {configmod.loader._toml_value(option.default)}"
                assert shown in text.splitlines(), shown
    assert effective(data) == {**effective_defaults(tmp_path),
                               ("server", "sftp_port"): 2200}


def effective_defaults(tmp_path) -> dict:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "strongroom.toml").write_text("")
    values = effective(empty)
    return {k: (v.replace(str(empty), str(tmp_path / "data")) if isinstance(v, str) else v)
            for k, v in values.items()}


def test_init_again_changes_one_line_and_keeps_the_comments(tmp_path):
    data = tmp_path / "data"
    init(data)
    before = (data / "strongroom.toml").read_text().splitlines()
    r = init(data, "--sftp-port", "2300")
    assert "set [server] sftp_port = 2300 (was 2222)" in r.stdout
    after = (data / "strongroom.toml").read_text().splitlines()
    assert len(after) == len(before)
    assert [(b, a) for b, a in zip(before, after) if a != b] == [
        ("sftp_port = 2222", "sftp_port = 2300")]


@pytest.mark.parametrize("given", [(), ("--webdav-port", "8444")])
def test_a_config_written_by_an_earlier_init_still_loads(tmp_path, given):
    """Existing installations keep their file: init neither rewrites nor comments it out."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(OLD_CONFIG, data / "strongroom.toml")
    old = OLD_CONFIG.read_text().splitlines()
    written = {(s, n) for s, t in tomllib.loads(OLD_CONFIG.read_text()).items() for n in t}
    # every option of its day was set; options added since are what the file lacks
    assert {(s, n) for s, options in SCHEMA.items() for n in options} - written == ADDED_SINCE
    init(data, *given)
    after = (data / "strongroom.toml").read_text().splitlines()
    assert [(b, a) for b, a in zip(old, after) if a != b] == (
        [("webdav_port = 8443", "webdav_port = 8444")] if given else [])
    assert len(after) == len(old)
    port = 8444 if given else 8443
    assert effective(data) == {**effective_defaults(tmp_path), ("server", "webdav_port"): port}
    r = cli(data, "client", "list", "--json")
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_init_options_come_from_the_schema():
    from strongroom.appliance.cli.daemon import init as command
    params = {p.name: p for p in command.params}
    for name, option in SCHEMA["server"].items():
        assert params[name].default == option.default, name
        assert params[name].help == option.help, name
