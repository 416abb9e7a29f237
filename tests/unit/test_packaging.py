"""The installed layout: every code folder is packaged, under the `strongroom` namespace only."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("appliance", "auth", "config", "providers")


def test_pyproject_lists_every_package_folder():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {"strongroom." + ".".join(p.parent.relative_to(ROOT).parts)
               for folder in FOLDERS for p in (ROOT / folder).rglob("__init__.py")}
    assert set(tool["packages"]) == on_disk
    assert tool["package-dir"] == {f"strongroom.{f}": f for f in FOLDERS}


def test_no_code_imports_the_bare_top_level_names():
    """`import config` would load a second copy of a module (or another distribution's)."""
    bare = re.compile(rf"^\s*(from|import) ({'|'.join(FOLDERS)})\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for d in (*FOLDERS, "tests", "bench")
                 for p in (ROOT / d).rglob("*.py") if bare.search(p.read_text())]
    assert offenders == []


def test_imports_go_one_way():
    """auth/ and providers/ import neither appliance/ nor each other; config/ imports none."""
    forbidden = {"auth": ("appliance", "providers"), "providers": ("appliance", "auth"),
                 "config": ("appliance", "auth", "providers")}
    found = []
    for folder, names in forbidden.items():
        pattern = re.compile(rf"^\s*(from|import) strongroom\.({'|'.join(names)})\b", re.M)
        found += [str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py")
                  if pattern.search(p.read_text())]
    assert found == []
