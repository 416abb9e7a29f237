"""What a long job of the service layer (an export, a scrub, a maintenance run)
tells about its progress, without knowing who shows it: the CLI hands in a
progress bar (appliance.cli.progress), everyone else nothing (NO_METER)."""
from typing import Protocol


class Meter(Protocol):
    def start(self, total: int) -> None:
        """The job's size is known: `total` units (bytes or items, as the job says)."""

    def advance(self, n: int = 1) -> None:
        """`n` more units are done."""


class _Silent:
    def start(self, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


NO_METER: Meter = _Silent()
