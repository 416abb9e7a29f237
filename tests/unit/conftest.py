"""The unit level: pure rules, converters, crypto and parsers, with no daemon and no
database server (a temporary folder at most). Every test here carries the `unit` marker."""
import pytest


def pytest_itemcollected(item):
    item.add_marker(pytest.mark.unit)
