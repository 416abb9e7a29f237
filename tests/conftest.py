"""How the suite is spread over pytest-xdist's processes (`scripts/test.sh`, `-n N`).
The fixtures are in each level's conftest.

- A unit or service test is a unit of work of its own: they compute, and any process
  may take the next one, so the fast levels end together on every process.
- An end-to-end or fault module shares one daemon between its tests (module-scoped
  fixtures, and later tests rely on what earlier ones did), so its tests go to one
  process, in order; a module that runs on both databases (its tests' ids name
  "sqlite" or "postgresql") is two groups, and its halves run on two processes at once.
- Groups are handed out in collection order: modules marked `slow` first, then the other
  end-to-end and fault modules, then the service and unit tests, which fill the gaps at
  the end. (xdist's own order, most tests first, started a long module of few tests
  last, and the whole run waited for it.)

The grouping is a scheduler of our own (pytest_xdist_make_scheduler): xdist's
`--dist loadgroup` renames items through an attribute pytest 9 no longer reads, so its
groups silently fell apart into single tests.
"""
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
DATABASES = ("sqlite", "postgresql")
SHARING = ("e2e", "faults")          # levels whose modules share a daemon


def group_of(nodeid: str) -> str:
    """The unit of work `nodeid` belongs to (see the module docstring)."""
    module, _, rest = nodeid.partition("::")
    if Path(module).parts[1:2] not in [(level,) for level in SHARING]:
        return nodeid
    params = rest.partition("[")[2].rstrip("]").split("-")
    database = next((p for p in params if p in DATABASES), None)
    return f"{module}:{database}" if database else module


def _rank(item: pytest.Item) -> int:
    if item.path.relative_to(TESTS).parts[0] not in SHARING:
        return 2
    return 0 if item.get_closest_marker("slow") else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)                # stable: a module's own order is kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the daemon's log to a failed end-to-end or fault test's report."""
    from tests.support.daemon import Daemon
    outcome = yield
    report = outcome.get_result()
    d = getattr(item, "funcargs", {}).get("daemon")
    if report.failed and isinstance(d, Daemon):
        report.sections.append(("daemon log (last 6000 characters)", d.log_text()[-6000:]))


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False     # our order, above
    return ByGroup(config, log)
