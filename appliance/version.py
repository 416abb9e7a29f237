"""The version this installation runs: the package version, and the source it was built from.

scripts/install.sh writes the source's git commit into `VENV/strongroom-build`, so that two
installs of the same package version from different commits are told apart (the upgrade
message, `strongroom --version`, and `strongroom status` naming a daemon that still runs the
old code).
"""
import sys
from importlib.metadata import version
from pathlib import Path

BUILD_FILE = "strongroom-build"


def installed() -> str:
    """'0.1.0', or '0.1.0 (git 0e5f1a2)' when the installer recorded the source."""
    text = version("strongroom")
    try:
        build = " ".join((Path(sys.prefix) / BUILD_FILE).read_text().split())[:80]
    except (OSError, UnicodeDecodeError):
        return text
    return f"{text} ({build})" if build else text
