"""Running a benchmark's rows against its servers, and the table of the results.

Each row runs --repeat times for each server; rounds alternate the server order so
that drift (other load on the machine, page cache growth) hits both alike. The table
shows the median and the best of the runs, because either alone flatters: the best
counts a peer's lucky run against our steady one (issue 17), the median a noisy
round. Server CPU-seconds per GB is the figure other load on the machine moves least.
"""
import argparse
import collections
import contextlib
import dataclasses
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from .procs import GB, PeakSampler

NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class Row:
    key: str        # what --rows names
    label: str      # as printed: notes and issues quote it, so keep it stable
    goal: float     # the ratio Strongroom/peer the row should reach
    size: int = 0   # bytes one run moves (server CPU per GB)
    files: int = 0  # files one run moves, in a files/s row (server CPU per file)


class CutOff(RuntimeError):
    """A client run stopped at its time limit; `done` bytes had moved by then, and the
    run scores `figure`, its rate until then (set by whoever knows the start time)."""

    def __init__(self, seconds: float, done: int):
        super().__init__(f"cut off after {seconds:.0f} s ({done / (1 << 20):.0f} MiB moved)")
        self.seconds, self.done, self.figure = seconds, done, NAN


@dataclasses.dataclass
class Run:
    figure: float   # MB/s or files/s
    cpu: float      # server CPU seconds, user + system
    moved: int      # bytes (or files) moved

    def cpu_per_unit(self, row: Row) -> float:
        """CPU seconds per GB, or CPU milliseconds per file in a files/s row."""
        if not self.moved:
            return NAN
        return self.cpu / self.moved * 1000 if row.files else self.cpu / (self.moved / GB)


class Result:
    """All runs of one row against one server."""

    def __init__(self):
        self.runs: list[Run] = []
        self.failures: list[str] = []
        self.slow = False
        self.rss, self.rss_procs = 0.0, 0

    @property
    def figures(self) -> list[float]:
        return [r.figure for r in self.runs]


def measure(servers: list, rows: list[Row], do_run, repeat: int,
            slow_after: float = 0) -> dict[tuple[str, str], Result]:
    """Run each row `repeat` times on each server through do_run(row_key, server, round),
    which returns the row's figure. With `slow_after`, a row that took longer on a server
    is not repeated there (one such run says enough and keeps the total short)."""
    results: dict[tuple[str, str], Result] = collections.defaultdict(Result)
    for rnd in range(repeat):
        for row in rows:
            for srv in (servers if rnd % 2 == 0 else servers[::-1]):
                res = results[(row.key, srv.name)]
                if not res.slow:
                    _one_run(srv, row, do_run, rnd, res, slow_after)
    return results


def _one_run(srv, row: Row, do_run, rnd: int, res: Result, slow_after: float) -> None:
    srv.row_started()
    sampler = PeakSampler(srv)
    sampler.start()
    (user0, sys0), t0 = srv.cpu(), time.monotonic()
    figure, moved, ok = NAN, row.files or row.size, False
    try:
        figure, ok = do_run(row.key, srv, rnd), True
    except CutOff as e:
        print(f"  {srv.name} {row.label}: {e}", flush=True)
        res.failures.append(f"cut off at {e.seconds:.0f} s")
        figure, moved = e.figure, e.done
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"  {srv.name} {row.label}: FAILED: {e}", flush=True)
        res.failures.append("failed")
    wall = time.monotonic() - t0
    # a cut-off run is repeated once: a stall against OpenSSH is a fluke, a slow server is not
    res.slow = bool(slow_after) and wall > slow_after and (ok or len(res.failures) > 1)
    srv.row_finished()
    user1, sys1 = srv.cpu()
    user, system = user1 - user0, sys1 - sys0
    rss, nprocs = sampler.stop()
    if rss > res.rss:
        res.rss, res.rss_procs = rss, nprocs
    run = Run(figure, user + system, moved)
    if figure == figure:
        res.runs.append(run)
    print(f"  round {rnd + 1} {row.label:46} {srv.name:10} {figure:8.1f}   server CPU "
          f"{user + system:5.2f} s (user {user:.2f}, sys {system:.2f}; "
          f"{(user + system) / max(wall, 1e-9):.0%} of wall) = {_per_unit(row, run)}, "
          f"peak RSS {rss:.0f} MiB{f' ({nprocs} procs)' if nprocs > 1 else ''}", flush=True)


def _per_unit(row: Row, run_or_value) -> str:
    value = run_or_value if isinstance(run_or_value, float) else run_or_value.cpu_per_unit(row)
    return f"{value:.2f} ms/file" if row.files else f"{value:.2f} s/GB"


def stats(res: Result) -> tuple[float, float, str]:
    """Median, best and the range of the figures ('' for a single run)."""
    figs = res.figures
    if not figs:
        return NAN, NAN, "-"
    rng = f"({min(figs):.0f}-{max(figs):.0f})" if len(figs) > 1 else ""
    return statistics.median(figs), max(figs), rng


def print_table(results, servers: list, rows: list[Row], repeat: int, note: str = "",
                peak_label: str = "") -> None:
    """The ratio table, then every run's figures. `peak_label`: a last row with each
    server's peak RSS over all rows."""
    names = [s.name for s in servers]
    peer = next((n for n in names if n != "Strongroom"), "")
    both = len(names) == 2 and bool(peer)
    print(f"\nmedian and best of {repeat} runs (range of all runs); MB = 10^6 bytes, GB = 10^9 "
          f"bytes; {os.cpu_count()} CPUs{note}")
    print(f"{'':46}" + "".join(f"{n:^30}" for n in names) +
          (f"{'SR/' + peer:^14}{'goal':>7}" if both else "") +
          f"{'server CPU, median':^{15 * len(names) + (7 if both else 0)}}" +
          f"{'peak RSS, MiB':^{12 * len(names)}}")
    print(f"{'':46}" + f"{'median':>9}{'best':>9}{'(all runs)':>12}" * len(names) +
          (f"{'median':>7}{'best':>7}{'':7}" if both else "") +
          "".join(f"{n:>15}" for n in names) + (f"{'SR/' + peer[:3]:>7}" if both else "") +
          "".join(f"{n:>12}" for n in names))
    for row in rows:
        print(_table_line(results, row, names, peer if both else ""))
    if peak_label:
        print(f"{peak_label:46}" + "".join(
            f"{max(results[(r.key, n)].rss for r in rows):9.0f}{'':21}" for n in names))
    labels = "; ".join(f"{s.name}: {s.rss_label()}" for s in servers)
    print("server CPU: user + system seconds of the server's processes per GB moved (files/s "
          "rows: milliseconds per file), the median over the runs")
    print(f"peak RSS: VmHWM, {labels}; (n) = processes summed, shared pages counted in each")
    _print_runs(results, rows, names)


def _table_line(results, row: Row, names: list[str], peer: str) -> str:
    line = f"{row.label:46}"
    for n in names:
        median, best, rng = stats(results[(row.key, n)])
        line += f"{median:9.1f}{best:9.1f} {rng:11}"
    if peer:
        (sm, sb, _), (pm, pb, _) = (stats(results[(row.key, n)]) for n in ("Strongroom", peer))
        line += f"{sm / pm if pm else NAN:6.2f}x{sb / pb if pb else NAN:6.2f}x" \
                f"{'>=' + str(row.goal):>7}"
    cpu = {n: _median([r.cpu_per_unit(row) for r in results[(row.key, n)].runs]) for n in names}
    line += "".join(f"{_per_unit(row, cpu[n]) if cpu[n] == cpu[n] else '-':>15}" for n in names)
    if peer:
        line += f"{cpu['Strongroom'] / cpu[peer] if cpu[peer] else NAN:6.2f}x"
    for n in names:
        r = results[(row.key, n)]
        line += f"{r.rss:7.0f}" + (f" ({r.rss_procs})" if r.rss_procs > 1 else "").ljust(5)
    notes = [f"{n} {c}x {k}" for n in names
             for k, c in collections.Counter(results[(row.key, n)].failures).items()]
    return line + (f"   [{', '.join(notes)}]" if notes else "")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else NAN


def _print_runs(results, rows: list[Row], names: list[str]) -> None:
    print("every run, in round order: figure (server CPU seconds)")
    for row in rows:
        print(f"  {row.label}")
        for n in names:
            runs = results[(row.key, n)].runs
            print(f"    {n:12}" + "  ".join(f"{r.figure:.1f} ({r.cpu:.2f} s)" for r in runs))


# -- a benchmark run: arguments, workspace -----------------------------------------------

def arguments(doc: str, rows: tuple, peer: str, repeat: int) -> argparse.ArgumentParser:
    """The options every protocol script has; the script adds its own."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=repeat,
                    help="runs per row (1..10); the table shows median, best and range")
    ap.add_argument("--rows", default=",".join(rows), metavar="ROW[,ROW]",
                    help="rows to run (default: all): " + ", ".join(rows))
    ap.add_argument("--only", choices=(peer, "strongroom"))
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="change the benchmark's strongroom.toml (repeatable)")
    ap.add_argument("--profile", metavar="DIR", help="py-spy Strongroom's rows into DIR")
    ap.add_argument("--no-table", action="store_true", help="skip the comparison")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return ap


def check_arguments(args, rows: tuple) -> list[str]:
    """The rows chosen, in table order; exits on a bad --repeat or --rows."""
    if not 1 <= args.repeat <= 10:
        raise SystemExit("--repeat is 1..10")
    chosen = [r for r in rows if r in args.rows.split(",")]
    if not chosen:
        raise SystemExit("--rows names none of the rows")
    return chosen


@contextlib.contextmanager
def workspace(prefix: str, keep: bool):
    """A temporary directory and a list of servers, stopped and removed at the end."""
    started, tmp, servers = time.monotonic(), tempfile.mkdtemp(prefix=prefix), []
    try:
        yield tmp, servers
    finally:
        for srv in servers:
            srv.stop()
        print(f"\ntotal time {time.monotonic() - started:.0f} s")
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
