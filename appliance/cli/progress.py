"""Progress of long CLI jobs (export, maintenance, verify), on stderr so that stdout
(and --json) stays the command's result: a rich progress bar when stderr is a
terminal; otherwise a plain line at most every `interval` seconds, the first only
once the job has run that long, so a short job (and a failing one's single error
line) prints nothing more. It is the appliance.service.meter.Meter the service
layer reports to."""
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal, TextIO

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress as Bar,
                           TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from strongroom.appliance.cli.options import human_size

Unit = Literal["bytes", "items"]


class Progress:
    """A context manager: `with Progress("export acme", unit="bytes") as p:` then
    p.start(total) and p.advance(n) as the job goes."""

    def __init__(self, label: str, *, unit: Unit = "items", stream: TextIO | None = None,
                 interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.unit = label, unit
        self.stream = sys.stderr if stream is None else stream
        self.interval, self.clock = interval, clock
        self.total: int | None = None
        self.done = 0
        self._began = self._said = clock()
        self._bar: Bar | None = None
        self._task: TaskID | None = None
        if _is_terminal(self.stream):
            self._bar = _rich_bar(label, unit, self.stream)

    def __enter__(self) -> "Progress":
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif kind is None and self._said > self._began:
            self._line("done")   # only after progress lines: a short job stays quiet

    def start(self, total: int) -> None:
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=n)
            return
        now = self.clock()
        if now - self._said >= self.interval:
            self._said = now
            self._line("")

    def _line(self, state: str) -> None:
        amount = self._amount(self.done)
        if self.total is not None:
            amount += f" of {self._amount(self.total)}"
            if self.total and not state:
                amount += f" ({100 * self.done // self.total}%)"
        took = self.clock() - self._began
        print(f"{self.label}: {state + ', ' if state else ''}{amount}, {took:.0f} s",
              file=self.stream, flush=True)

    def _amount(self, n: int) -> str:
        return human_size(n) if self.unit == "bytes" else f"{n:,}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # closed, or not a real file
        return False


def _rich_bar(label: str, unit: Unit, stream: TextIO) -> Bar:
    amount = ((DownloadColumn(binary_units=True), TransferSpeedColumn()) if unit == "bytes"
              else (MofNCompleteColumn(),))
    return Bar(TextColumn("{task.description}"), BarColumn(), *amount, TimeElapsedColumn(),
               TimeRemainingColumn(), console=Console(file=stream, force_terminal=True),
               transient=False)
