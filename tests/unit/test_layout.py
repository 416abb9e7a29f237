"""The test suite's own layout: tests live in one folder per level, share code only
through conftest fixtures and tests/support, and never import one another.

A test module importing another runs that module's tests' setup code twice and ties
the two together (moving one breaks the other); `from conftest import` depends on
which folder pytest put on sys.path; a star import hides where a name comes from."""
import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
LEVELS = ("unit", "service", "e2e", "faults")


def _is_test_module(name: str) -> bool:
    return name == "conftest" or name.startswith("test_")


def offences(path: Path) -> list[str]:
    """What in `path` imports a test module or conftest, or star-imports anything."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] if module else []
            if any(alias.name == "*" for alias in node.names):
                found.append(f"line {node.lineno}: star import from {module or '.'}")
            if node.level or module == "tests" or module.startswith("tests."):
                names += [alias.name for alias in node.names]
        else:
            continue
        found += [f"line {node.lineno}: imports {name}" for name in names
                  if any(_is_test_module(part) for part in name.split("."))]
    return found


def test_no_module_imports_a_test_module_or_conftest_or_star_imports():
    bad = {str(p.relative_to(TESTS)): o for p in sorted(TESTS.rglob("*.py"))
           if (o := offences(p))}
    assert bad == {}


def test_the_checker_sees_each_kind_of_offence(tmp_path):
    """The rule above cannot pass by looking at nothing."""
    cases = {"from conftest import HOST": 1, "import conftest": 1,
             "from tests.conftest import Daemon": 1, "from test_e2e_x import run": 1,
             "from tests.e2e.test_e2e_x import run": 1, "from tests.e2e import test_e2e_x": 1,
             "from . import conftest": 1, "from tests.support.daemon import *": 1,
             "from tests.support.daemon import HOST": 0, "import pytest": 0}
    for source, count in cases.items():
        module = tmp_path / "test_case.py"
        module.write_text(source + "\n")
        assert len(offences(module)) == count, source


def test_every_test_module_is_in_a_level_folder():
    """A module left in tests/ itself (or a new folder) would carry no level marker, and
    `scripts/test.sh -m "not e2e"` would run it whatever it starts."""
    stray = [str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py")
             if p.relative_to(TESTS).parts[0] not in LEVELS]
    assert stray == []
    for level in LEVELS:
        assert (TESTS / level / "conftest.py").exists(), level
