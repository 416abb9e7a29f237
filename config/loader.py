"""Load and validate a TOML config file against `SCHEMA`; render the example file."""
import os
import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any, TypeAlias

from strongroom.config import sections
from strongroom.config.converters import Value
from strongroom.config.schema import SCHEMA


class ConfigError(Exception):
    """A config file is unreadable or holds a bad value; the message names file and option."""


class Config:
    """Validated settings: `cfg.section.option` (typed by config.sections) or
    `cfg.get(section, option)`."""

    def __init__(self, values: dict[str, dict[str, Value]], data_dir: Path,
                 path: Path | None) -> None:
        self._values = values
        self.data_dir = data_dir
        self.path = path

    def get(self, section: str, option: str) -> Value:
        return self._values[section][option]

    @property
    def server(self) -> sections.Server:
        return sections.Server(self._values["server"])

    @property
    def tls(self) -> sections.Tls:
        return sections.Tls(self._values["tls"])

    @property
    def ssh(self) -> sections.Ssh:
        return sections.Ssh(self._values["ssh"])

    @property
    def database(self) -> sections.Database:
        return sections.Database(self._values["database"])

    @property
    def storage(self) -> sections.Storage:
        return sections.Storage(self._values["storage"])

    @property
    def webdav(self) -> sections.Webdav:
        return sections.Webdav(self._values["webdav"])

    @property
    def web(self) -> sections.Web:
        return sections.Web(self._values["web"])

    @property
    def mail(self) -> sections.Mail:
        return sections.Mail(self._values["mail"])

    @property
    def notify(self) -> sections.Notify:
        return sections.Notify(self._values["notify"])

    @property
    def auth(self) -> sections.Auth:
        return sections.Auth(self._values["auth"])

    @property
    def audit(self) -> sections.Audit:
        return sections.Audit(self._values["audit"])

    @property
    def retention(self) -> sections.Retention:
        return sections.Retention(self._values["retention"])

    @property
    def log(self) -> sections.Log:
        return sections.Log(self._values["log"])

    @property
    def metrics(self) -> sections.Metrics:
        return sections.Metrics(self._values["metrics"])


# A TOML document as tomllib reads it: tables of values of any TOML type, checked by
# the schema's converters (which take `object`).
Toml: TypeAlias = dict[str, Any]


def load(data_dir: Path, path: Path | None = None, overrides: Toml | None = None) -> Config:
    """Read `path` (default DATA_DIR/strongroom.toml), fill defaults, convert, resolve paths."""
    data_dir = Path(data_dir).resolve()
    path = Path(path) if path else data_dir / "strongroom.toml"
    raw = _read(path)
    for section, opts in (overrides or {}).items():
        raw.setdefault(section, {}).update(opts)
    values: dict[str, dict[str, Value]] = {}
    for section, options in SCHEMA.items():
        given = raw.pop(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        values[section] = {}
        for name, opt in options.items():
            try:
                value = opt.convert(given.pop(name, opt.default))
            except ValueError as e:
                raise ConfigError(f"{path}: option {section}.{name}: {e}") from None
            if opt.is_path and isinstance(value, str) and value:   # paths are strings
                value = str((data_dir / os.path.expanduser(value)).resolve())
            values[section][name] = value
        for name in given:
            raise ConfigError(f"{path}: unknown option {section}.{name}")
    for section in raw:
        raise ConfigError(f"{path}: unknown section [{section}]")
    return Config(values, data_dir, path)


def _read(path: Path) -> Toml:
    if not path.exists():
        raise ConfigError(
            f"no config file in {path.parent} (looked for {path.name}): run 'strongroom init "
            f"--data-dir {path.parent}' first, or choose another data directory with "
            "--data-dir or STRONGROOM_DATA_DIR")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None


def render_example(values: Toml | None = None) -> str:
    """The TOML file for `init`: every option with its help text. Options in `values`
    ({section: {option: value}}) are set; all others are commented out, showing their
    default, so that they follow the defaults of later releases."""
    values = values or {}
    lines = _HEADER[:]
    for section, options in SCHEMA.items():
        lines.append(f"[{section}]")
        for name, opt in options.items():
            lines += textwrap.wrap(opt.help, 88, initial_indent="# ", subsequent_indent="# ")
            given = values.get(section, {})
            value = _toml_value(given.get(name, opt.default))
            lines.append(f"{name} = {value}" if name in given else f"# {name} = {value}")
        lines.append("")
    return "\n".join(lines)


_HEADER = ["# Strongroom configuration. Relative paths are inside the data directory.",
           "# An option commented out ('# name = value') has its default, the value shown:",
           "# remove the '# ' to set it. 'strongroom init --sftp-port 2200' (also --host,",
           "# --webdav-port, --public-name) sets the options it is given in this file.",
           ""]


def _toml_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def set_options(data_dir: Path, section: str,
                values: dict[str, object]) -> dict[str, tuple[object, object]]:
    """Write `values` into [section] of the data directory's config file, keeping its
    comments (an option commented out is set on its own line); return {name: (old, new)}
    for those whose effective value changed. The file is replaced only if the result loads."""
    path = Path(data_dir) / "strongroom.toml"
    before = _read(path).get(section, {})
    defaults = SCHEMA.get(section, {})
    old = {n: before[n] if n in before else getattr(defaults.get(n), "default", None)
           for n in values}
    changed = {n: (old[n], v) for n, v in values.items() if old[n] != v}
    if not changed:
        return {}
    lines = path.read_text("utf-8").splitlines()
    for name, (_old, new) in changed.items():
        _set_line(lines, section, name, _toml_value(new))
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("\n".join(lines) + "\n", "utf-8")
    os.chmod(tmp, os.stat(path).st_mode & 0o777)
    try:
        load(Path(data_dir), tmp)
    except ConfigError as e:
        tmp.unlink()
        raise ConfigError(str(e).replace(str(tmp), str(path))) from None
    os.replace(tmp, path)
    return changed


_TABLE = re.compile(r"\s*\[\s*([A-Za-z0-9_-]+)\s*\]")
_SET = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=")
_COMMENTED = re.compile(r"\s*#\s*([A-Za-z0-9_-]+)\s*=")


def _set_line(lines: list[str], section: str, name: str, value: str) -> None:
    """`name = value` in [section]: on the line that sets it, else on the line that
    shows it commented out (its help stays above), else at the end of the section."""
    start, end = _section_lines(lines, section)
    if start is None:
        lines += ["", f"[{section}]", f"{name} = {value}"]
        return
    for pattern in (_SET, _COMMENTED):
        for i in range(start + 1, end):
            m = pattern.match(lines[i])
            if m and m.group(1) == name:
                lines[i] = f"{name} = {value}"
                return
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    lines.insert(end, f"{name} = {value}")


def _section_lines(lines: list[str], section: str) -> tuple[int | None, int]:
    """Index of the [section] header line and of the line after the section."""
    start = None
    for i, line in enumerate(lines):
        m = _TABLE.match(line)
        if m and start is not None:
            return start, i
        if m and m.group(1) == section:
            start = i
    return start, len(lines)
