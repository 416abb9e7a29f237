"""Code the test levels share: plain helpers and classes, imported by name
(`from tests.support.daemon import Daemon`). Fixtures live in the conftest.py of
the level that uses them."""
