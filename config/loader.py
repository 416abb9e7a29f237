"""Load and validate a TOML config file against `SCHEMA`; render the example file."""
import os
import tomllib
from pathlib import Path

from config.schema import SCHEMA


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
