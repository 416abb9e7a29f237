"""`strongroom keys ...` commands (see keys.py); filled in by the work on issue 15."""
from strongroom.appliance.cli.keys import keys

__all__ = ["keys"]
