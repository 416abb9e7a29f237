"""Retention from the command line as an admin's script drives it (a subprocess): a
client's own options set, shown and refused in one line; a version pinned and listed so;
[retention] in the config file refused naming file and option."""
import json
import subprocess
import sys

import pytest


def cli(data_dir, *args):
    return subprocess.run([sys.executable, "-m", "strongroom.appliance.cli", *map(str, args),
                           "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    r = cli(d, "init", "--host", "127.0.0.1", "--webdav-port", "0", "--sftp-port", "0")
    assert r.returncode == 0, r.stderr
    assert cli(d, "client", "add", "acme").returncode == 0
    return d


def test_client_retention_from_the_command_line(data_dir):
    r = cli(data_dir, "client", "set", "acme", "--retention", "keep_all=7d,max_versions=20",
            "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(cli(data_dir, "client", "show", "acme", "--json").stdout)
    assert shown["retention"]["keep_all"] == {"seconds": 604800.0, "own": True}
    assert shown["retention"]["max_versions"] == {"count": 20, "own": True}
    assert shown["retention"]["trash_days"] == {"seconds": 2592000.0, "own": False}
    assert (shown["history_bytes"], shown["trash_bytes"]) == (0, 0)
    r = cli(data_dir, "client", "set", "acme", "--retention", "max_versions=-1")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == ("strongroom: error: retention option max_versions: "
                                "expected a positive integer, got '-1'")
    assert json.loads(cli(data_dir, "client", "show", "acme", "--json").stdout) == shown


def test_pin_from_the_command_line(data_dir, tmp_path):
    r = cli(data_dir, "versions", "pin", "/acme/none.txt", "1")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "none.txt" in r.stderr and "Traceback" not in r.stderr


def test_retention_in_the_config_file_is_checked(data_dir):
    cfg = data_dir / "strongroom.toml"
    cfg.write_text(cfg.read_text() + '\n[retention]\nkeep_all = "0d"\n'
                   if "[retention]" not in cfg.read_text() else
                   cfg.read_text().replace('# keep_all = "2d"', 'keep_all = "0d"'))
    r = cli(data_dir, "client", "list")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert str(cfg) in r.stderr and "option retention.keep_all:" in r.stderr
