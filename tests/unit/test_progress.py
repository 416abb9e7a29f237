"""The progress helper of long CLI jobs (appliance.cli.progress): a rich bar on a
terminal, plain throttled lines otherwise, and nothing at all for a short job."""
import io

from strongroom.appliance.cli.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_short_job_prints_nothing_when_not_a_terminal():
    out, clock = io.StringIO(), Clock()
    with Progress("export acme", unit="bytes", stream=out, clock=clock) as p:
        p.start(3 * 1024 * 1024)
        for _ in range(3):
            clock.now += 1
            p.advance(1024 * 1024)
    assert out.getvalue() == ""


def test_a_long_job_prints_a_line_per_interval_and_one_at_the_end():
    out, clock = io.StringIO(), Clock()
    with Progress("export acme", unit="bytes", stream=out, clock=clock, interval=10) as p:
        p.start(4 * 1024 * 1024)
        for _ in range(4):
            clock.now += 6
            p.advance(1024 * 1024)
    assert out.getvalue().splitlines() == [
        "export acme: 2.0 MiB of 4.0 MiB (50%), 12 s",
        "export acme: 4.0 MiB of 4.0 MiB (100%), 24 s",
        "export acme: done, 4.0 MiB of 4.0 MiB, 24 s"]


def test_items_are_counted_without_a_unit_of_size():
    out, clock = io.StringIO(), Clock()
    with Progress("verify", stream=out, clock=clock, interval=1) as p:
        p.start(2500)
        clock.now += 2
        p.advance(1250)
    assert out.getvalue().splitlines()[0] == "verify: 1,250 of 2,500 (50%), 2 s"


def test_a_terminal_gets_a_bar():
    out = Terminal()
    with Progress("verify", stream=out) as p:
        p.start(4)
        p.advance(2)
        p.advance(2)
    text = out.getvalue()
    assert "verify" in text and "4/4" in text and "━" in text   # rich's bar and count
