"""Strongroom configuration: a declarative schema and a TOML loader built from it.

`SCHEMA` is the single source for defaults, help texts, converters, the example
file written by `strongroom init` and the option names errors refer to.
"""
from strongroom.config.schema import SCHEMA, Option
from strongroom.config.loader import Config, ConfigError, load, render_example, set_options

__all__ = ["SCHEMA", "Option", "Config", "ConfigError", "load", "render_example", "set_options"]
