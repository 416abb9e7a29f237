"""The config loader and its converters, in-process: every option's converter, unknown
names, the commented-out file `init` writes, `set_options` editing it, and properties of
the size and duration converters."""
import textwrap
import tomllib
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from strongroom import config as configmod
from strongroom.config import SCHEMA, ConfigError
from strongroom.config import converters as conv

# A value each option refuses (TOML text). An option missing here (a new one) is still
# tried with an array, which no converter accepts.
BAD = {
    ("server", "host"): "8443", ("server", "webdav_port"): "70000",
    ("server", "sftp_port"): '"ssh"', ("server", "public_name"): "true",
    ("tls", "cert_file"): "1", ("tls", "key_file"): "[]",
    ("ssh", "host_key_ed25519"): "false", ("ssh", "host_key_rsa"): "3",
    ("ssh", "login_grace_time"): '"0s"', ("ssh", "max_startups"): "0",
    ("ssh", "max_sessions"): "-1", ("ssh", "max_startups_per_address"): '"20"',
    ("database", "url"): "5",
    ("storage", "blob_dir"): "1", ("storage", "chunk_size"): '"4KiB"',
    ("storage", "master_key_file"): "true", ("storage", "max_file_size"): '"0"',
    ("storage", "reserve"): '"101%"',
    ("webdav", "block_size"): "0", ("webdav", "threads"): '"many"',
    ("webdav", "lock_max"): '"1 fortnight"', ("webdav", "max_header_size"): '"-1KiB"',
    ("webdav", "header_timeout"): "0", ("webdav", "max_unauthenticated_per_address"): "0",
    ("auth", "app_passwords_sftp"): '"yes"', ("auth", "drive_session_idle"): "-5",
    ("auth", "drive_session_lifetime"): '"7 days"', ("auth", "drive_session_ipv4_prefix"): "33",
    ("auth", "drive_session_ipv6_prefix"): "129", ("auth", "account_delay_after"): "-1",
    ("auth", "account_block_after"): "0", ("auth", "address_delay_after"): "1.5",
    ("auth", "address_block_after"): "true", ("auth", "delay"): '"soon"',
    ("auth", "block_time"): "true", ("auth", "block_max"): '"1y"',
    ("auth", "forget_after"): "[1]",
    ("audit", "anchor_file"): "0", ("audit", "anchor_interval"): '"0m"',
    ("log", "level"): '"verbose"', ("log", "format"): '"xml"',
    ("metrics", "enabled"): "1", ("metrics", "listen"): '"localhost"',
    ("mail", "host"): '"smtp://mail.example"', ("mail", "port"): "0",
    ("mail", "security"): '"ssl"', ("mail", "username"): "1",
    ("mail", "password_file"): "false", ("mail", "sender"): '"files at firm"',
    ("mail", "verify_certificate"): '"no"',
    ("notify", "quiet_period"): '"soon"', ("notify", "ignore"): '["*.part", 3]',
    ("notify", "webhook_url"): '"ftp://hooks.example/x"', ("notify", "webhook_secret_file"): "[]",
    ("retention", "keep_all"): '"2"', ("retention", "max_age"): '"0d"',
    ("retention", "max_versions"): "0", ("retention", "trash_days"): "-30",
    ("retention", "history_quota"): '"5G"', ("retention", "interval"): '"none"',
}
OPTIONS = [(section, name) for section, options in SCHEMA.items() for name in options]


def write(data_dir, text: str):
    data_dir.mkdir(exist_ok=True)
    path = data_dir / "strongroom.toml"
    path.write_text(text, "utf-8")
    return path


def effective(cfg) -> dict:
    return {(s, n): cfg.get(s, n) for s, n in OPTIONS}


def test_the_table_names_only_options_of_the_schema():
    assert set(BAD) <= set(OPTIONS)


@pytest.mark.parametrize("section, name", OPTIONS)
def test_every_option_accepts_its_default(tmp_path, section, name):
    default = configmod.loader._toml_value(SCHEMA[section][name].default)
    cfg = configmod.load(tmp_path, write(tmp_path, f"[{section}]\n{name} = {default}\n"))
    assert effective(cfg) == effective(configmod.load(tmp_path, write(tmp_path / "e", "")))


@pytest.mark.parametrize("section, name", OPTIONS)
def test_every_option_refuses_a_bad_value_naming_file_and_option(tmp_path, section, name):
    path = write(tmp_path, f"[{section}]\n{name} = {BAD.get((section, name), '[[1]]')}\n")
    with pytest.raises(ConfigError) as e:
        configmod.load(tmp_path)
    assert str(path) in str(e.value) and f"option {section}.{name}:" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, says", [
    ("[nosuch]\nx = 1\n", "unknown section [nosuch]"),
    ("[storage]\nchunksize = 262144\n", "unknown option storage.chunksize"),
    ("server = 5\n", "[server] must be a table"),
    ("[server\n", "not valid TOML"),
])
def test_unknown_or_malformed_is_refused(tmp_path, text, says):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        configmod.load(tmp_path)
    assert str(path) in str(e.value) and says in str(e.value)


def test_the_commented_out_file_is_the_defaults(tmp_path):
    text = configmod.render_example()
    assert all(table == {} for table in tomllib.loads(text).values())
    cfg = configmod.load(tmp_path, write(tmp_path, text))
    assert effective(cfg) == effective(configmod.load(tmp_path, write(tmp_path / "e", "")))
    for section, name in OPTIONS:
        option = SCHEMA[section][name]
        shown = f"# {name} = {configmod.loader._toml_value(option.default)}"
        helped = textwrap.wrap(option.help, 88, initial_indent="# ", subsequent_indent="# ")
        assert "\n".join([*helped, shown]) in text, name


def test_render_sets_only_the_values_given():
    text = configmod.render_example({"server": {"sftp_port": 2200, "host": "0.0.0.0"}})
    assert {s: t for s, t in tomllib.loads(text).items() if t} == {
        "server": {"sftp_port": 2200, "host": "0.0.0.0"}}
    assert "# webdav_port = 8443" in text.splitlines()


def test_set_options_uncomments_one_line_and_keeps_the_rest(tmp_path):
    before = write(tmp_path, configmod.render_example()).read_text().splitlines()
    changed = configmod.set_options(tmp_path, "storage", {"reserve": "10GiB"})
    after = (tmp_path / "strongroom.toml").read_text().splitlines()
    assert changed == {"reserve": ("5%", "10GiB")}
    assert len(after) == len(before)
    assert [(b, a) for b, a in zip(before, after) if a != b] == [
        ('# reserve = "5%"', 'reserve = "10GiB"')]
    assert configmod.load(tmp_path).storage.reserve == conv.Amount(bytes=10 * 1024**3)
    assert configmod.set_options(tmp_path, "storage", {"reserve": "10GiB"}) == {}


def test_set_options_adds_what_the_file_does_not_show(tmp_path):
    write(tmp_path, "# mine\n[server]\nhost = \"::1\"\n\n[log]\nlevel = \"debug\"\n")
    configmod.set_options(tmp_path, "server", {"sftp_port": 2300})
    configmod.set_options(tmp_path, "metrics", {"enabled": True})
    assert (tmp_path / "strongroom.toml").read_text() == (
        '# mine\n[server]\nhost = "::1"\nsftp_port = 2300\n\n[log]\nlevel = "debug"\n'
        "\n[metrics]\nenabled = true\n")


def test_set_options_refuses_a_bad_value_and_changes_nothing(tmp_path):
    text = write(tmp_path, configmod.render_example()).read_text()
    with pytest.raises(ConfigError) as e:
        configmod.set_options(tmp_path, "server", {"webdav_port": 99999})
    assert "server.webdav_port" in str(e.value) and ".new" not in str(e.value)
    assert (tmp_path / "strongroom.toml").read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["strongroom.toml"]


# -- properties of sizes and durations ---------------------------------------------

SIZE_UNITS = {"": 1, "B": 1, "k": 1024, "KiB": 1024, "kB": 1000, "MiB": 1024**2, "MB": 1000**2,
              "G": 1024**3, "GiB": 1024**3, "GB": 1000**3, "TiB": 1024**4, "TB": 1000**4}
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
spacing = st.sampled_from(["", " "])
decimals = st.tuples(st.integers(0, 10**6), st.text("0123456789", min_size=1, max_size=6))


@given(st.integers(0, 2**40), st.sampled_from(sorted(SIZE_UNITS)), spacing)
def test_a_size_written_in_a_unit_reads_back_as_its_bytes(n, unit, space):
    written, size = f"{n}{space}{unit}", n * SIZE_UNITS[unit]
    if size > 2**63 - 1:      # more than a BIGINT column holds
        for value in (written, size):
            with pytest.raises(ValueError, match="at most"):
                conv.size(value)
        return
    assert conv.size(written) == size
    assert conv.size(written.upper() if unit else written) == size
    assert conv.size(size) == size


@given(decimals, st.sampled_from([u for u in SIZE_UNITS if len(u) > 1]))
def test_a_decimal_size_is_exact(number, unit):
    """'4.35MB' is 4350000 bytes, not 4349999 (a float's product rounded down)."""
    text = f"{number[0]}.{number[1]}"
    exact = int(Fraction(text) * SIZE_UNITS[unit])
    assert conv.size(text + unit) == exact
    assert conv.size_with_unit(text + unit) == exact


@given(st.text("0123456789", min_size=300, max_size=400), st.sampled_from(["GiB", "TB", ""]))
def test_a_huge_size_is_a_value_error(digits, unit):
    """Never an OverflowError (a traceback instead of one line naming the option)."""
    for convert in (conv.size, conv.size_with_unit, conv.positive_size, conv.size_or_percent):
        try:
            assert convert(digits + (unit or "B")) is not None
        except ValueError:
            pass


@given(st.integers(0, 10**9), st.sampled_from(sorted(DURATION_UNITS)), spacing)
def test_a_duration_written_in_a_unit_reads_back_as_its_seconds(n, unit, space):
    seconds = n * DURATION_UNITS[unit]
    assert conv.duration(f"{n}{space}{unit}") == seconds
    assert conv.duration(seconds) == seconds
    if unit and n:
        assert conv.duration_with_unit(f"{n}{space}{unit}") == seconds
        assert conv.positive_duration(f"{n}{unit}") == seconds


@pytest.mark.parametrize("value", [float("inf"), "9" * 400 + "s", "9" * 400])
def test_an_endless_duration_is_refused(value):
    for convert in (conv.duration, conv.positive_duration, conv.duration_with_unit):
        with pytest.raises(ValueError):
            convert(value)


@pytest.mark.parametrize("name, given, expected", [
    ("keep_all", '"36h"', 36 * 3600.0), ("keep_all", "600", 600.0),
    ("max_age", '"None"', None), ("max_age", '"52w"', 52 * 604800.0),
    ("max_versions", "20", 20), ("max_versions", '"20"', 20), ("max_versions", '"none"', None),
    ("trash_days", "30", 30 * 86400.0), ("trash_days", '"7"', 7 * 86400.0),
    ("trash_days", "0.5", 43200.0), ("trash_days", '"12h"', 43200.0),
    ("history_quota", '"5GiB"', 5 * 1024**3), ("history_quota", "1000", 1000),
    ("history_quota", '"none"', None), ("interval", '"15m"', 900.0),
])
def test_retention_values(tmp_path, name, given, expected):
    cfg = configmod.load(tmp_path, write(tmp_path, f"[retention]\n{name} = {given}\n"))
    assert getattr(cfg.retention, name) == expected


@pytest.mark.parametrize("name, given", [
    ("keep_all", "0"), ("keep_all", "-1"), ("keep_all", '"-2d"'), ("keep_all", '"none"'),
    ("keep_all", '"7"'), ("max_age", '"1 year"'), ("max_versions", "-3"),
    ("max_versions", "2.5"), ("max_versions", "true"), ("trash_days", "0"),
    ("trash_days", '"0h"'), ("trash_days", '"none"'), ("trash_days", "1e400"),
    ("history_quota", "0"), ("history_quota", '"-1GiB"'), ("history_quota", '"5"'),
    ("interval", "0"),
])
def test_retention_refuses_zero_negative_and_unparsable(tmp_path, name, given):
    path = write(tmp_path, f"[retention]\n{name} = {given}\n")
    with pytest.raises(ConfigError) as e:
        configmod.load(tmp_path)
    assert str(e.value).startswith(f"{path}: option retention.{name}: ")
    assert "\n" not in str(e.value)
