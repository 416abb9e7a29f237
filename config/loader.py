"""Load and validate a TOML config file against `SCHEMA`; render the example file."""
import os
import tomllib
from pathlib import Path

from strongroom.config.schema import SCHEMA


class ConfigError(Exception):
    """A config file is unreadable or holds a bad value; the message names file and option."""


class Config:
    """Validated settings: `cfg.section.option` or `cfg.get(section, option)`."""

    def __init__(self, values: dict, data_dir: Path, path: Path | None):
        self._values = values
        self.data_dir = data_dir
        self.path = path

    def get(self, section: str, option: str):
        return self._values[section][option]

    def __getattr__(self, section):
        try:
            return _Section(self._values[section])
        except KeyError:
            raise AttributeError(section) from None


class _Section:
    def __init__(self, values):
        self.__dict__.update(values)


def load(data_dir: Path, path: Path | None = None, overrides: dict | None = None) -> Config:
    """Read `path` (default DATA_DIR/strongroom.toml), fill defaults, convert, resolve paths."""
    data_dir = Path(data_dir).resolve()
    path = Path(path) if path else data_dir / "strongroom.toml"
    raw = _read(path)
    for section, opts in (overrides or {}).items():
        raw.setdefault(section, {}).update(opts)
    values = {}
    for section, options in SCHEMA.items():
        given = raw.pop(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        values[section] = {}
        for name, opt in options.items():
            value = given.pop(name, opt.default)
            try:
                value = opt.convert(value)
            except ValueError as e:
                raise ConfigError(f"{path}: option {section}.{name}: {e}") from None
            if opt.is_path and value:
                value = str((data_dir / os.path.expanduser(value)).resolve())
            values[section][name] = value
        for name in given:
            raise ConfigError(f"{path}: unknown option {section}.{name}")
    for section in raw:
        raise ConfigError(f"{path}: unknown section [{section}]")
    return Config(values, data_dir, path)


def _read(path: Path) -> dict:
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


def render_example(values: dict | None = None) -> str:
    """The commented TOML file for `init`: every option with its help; `values` override defaults."""
    values = values or {}
    lines = ["# Strongroom configuration. Relative paths are inside the data directory.", ""]
    for section, options in SCHEMA.items():
        lines.append(f"[{section}]")
        for name, opt in options.items():
            lines.append(f"# {opt.help}")
            lines.append(f"{name} = {_toml_value(values.get(section, {}).get(name, opt.default))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def set_options(data_dir: Path, section: str, values: dict) -> dict:
    """Write `values` into [section] of the data directory's config file, keeping its
    comments; return {name: (old, new)} for those that changed. The file is replaced
    only if the result loads."""
    path = Path(data_dir) / "strongroom.toml"
    before = _read(path).get(section, {})
    changed = {n: (before.get(n), v) for n, v in values.items() if before.get(n) != v}
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


def _set_line(lines: list[str], section: str, name: str, value: str) -> None:
    current, end = None, None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            if current == section:
                end = i
                break
            current = stripped.strip("[] ")
        elif current == section and stripped.split("=", 1)[0].strip() == name \
                and "=" in stripped:
            lines[i] = f"{name} = {value}"
            return
    if current != section and end is None:
        lines += ["", f"[{section}]"]
        end = len(lines)
    lines.insert(end if end is not None else len(lines), f"{name} = {value}")
