"""How the suite is spread over pytest-xdist's processes (scripts/test.sh runs
`--dist loadgroup --no-loadscope-reorder`). The fixtures are in each level's conftest.

- A unit or service test is a unit of work of its own: they compute, and any process
  may take the next one, so the fast levels end together on every process.
- An end-to-end or fault module shares one daemon between its tests (module-scoped
  fixtures), so its tests go together; a module that runs on both databases (a
  module-scoped fixture parametrized "sqlite"/"postgresql") is two groups, and its
  halves run on two processes at once.
- Groups are handed out in collection order: modules marked `slow` first, then the other
  end-to-end and fault modules, then the service and unit tests, which fill the gaps at
  the end. (xdist's own order, most tests first, started a long module of few tests
  last, and the whole run waited for it.)
"""
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
DATABASES = ("sqlite", "postgresql")
SHARING = ("e2e", "faults")          # levels whose modules share a daemon


def _level(item: pytest.Item) -> str:
    return item.path.relative_to(TESTS).parts[0]


def _database(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    values = callspec.params.values() if callspec is not None else ()
    return next((v for v in values if isinstance(v, str) and v in DATABASES), None)


def _rank(item: pytest.Item) -> int:
    if _level(item) not in SHARING:
        return 2
    return 0 if item.get_closest_marker("slow") else 1


@pytest.hookimpl(tryfirst=True)    # before xdist reads the groups from the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _level(item) in SHARING:
            module, database = item.nodeid.split("::")[0], _database(item)
            group = f"{module}[{database}]" if database else module
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_rank)                # stable: a module's own order is kept
