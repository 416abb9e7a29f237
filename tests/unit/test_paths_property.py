"""Properties of path cleaning (appliance/service/paths.py), the one place every
protocol's path is confined: whatever a client sends, the result names something
inside the user's view, cleaning twice changes nothing, '..' never climbs above the
root, and every spelling of one path cleans to the same components.

Hypothesis builds paths from names that look alike ('a', 'a.', '..a', ' '), the
special components '', '.' and '..', and a few letters outside ASCII."""
import os.path

import pytest
from hypothesis import example, given, settings, strategies as st

from strongroom.appliance.errors import BadRequest
from strongroom.appliance.service.paths import MAX_DEPTH, MAX_NAME_BYTES, check_name, clean, join

names = st.one_of(
    st.sampled_from(["a", "ab", "a.", ".a", "..a", "a..", "...", " ", "a b", "Übersicht März",
                     "ß€ 😀", "~$x.docx", "@trash", "@versions", "\\", "a\\..\\b"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x7f",
                          min_codepoint=32), min_size=1, max_size=12)
    .filter(lambda n: n not in (".", "..")))
components = st.one_of(names, st.sampled_from(["", ".", ".."]))
raw_paths = st.lists(components, max_size=20).map("/".join)
clean_paths = st.lists(names, max_size=8).map(tuple)
SETTINGS = settings(max_examples=300, deadline=None)


def resolve(path: str) -> tuple[str, ...]:
    """What a path means, worked out step by step: a stack of folders from the root."""
    stack: list[str] = []
    for comp in path.split("/"):
        if comp == "..":
            stack = stack[:-1]
        elif comp not in ("", "."):
            stack.append(comp)
    return tuple(stack)


@SETTINGS
@given(raw_paths)
@example("../../etc/passwd")
@example("/a/../../..//b/./c/")
def test_cleaning_resolves_dots_and_stays_below_the_root(path):
    parts = clean(path)
    assert parts == resolve(path)
    assert all(p not in ("", ".", "..") and "/" not in p for p in parts)
    for p in parts:
        check_name(p)                      # every component is a name the store accepts
    root = "/srv/strongroom/acme"          # the second, on-disk confinement agrees
    assert os.path.normpath(os.path.join(root, *parts)).startswith(root)


@SETTINGS
@given(raw_paths)
def test_cleaning_is_idempotent_and_join_round_trips(path):
    parts = clean(path)
    assert clean(join(parts)) == parts
    assert clean(join(parts).encode()) == parts     # bytes (SFTP) clean like text (WebDAV)
    assert join(parts).startswith("/") and "//" not in join(parts)


@SETTINGS
@given(clean_paths, st.integers(1, 10), raw_paths)
def test_no_number_of_dot_dots_escapes_the_root(parts, extra, rest):
    climbing = "/".join([".."] * (len(parts) + extra))
    assert clean(join(parts) + "/" + climbing) == ()
    assert clean(climbing + "/" + rest) == clean(rest)


@SETTINGS
@given(clean_paths, st.data())
def test_every_spelling_of_a_path_cleans_alike(parts, data):
    """Doubled slashes, './', a trailing slash and 'name/..' detours name the same place."""
    spelled = []
    for part in parts:
        spelled += data.draw(st.lists(st.sampled_from(["", ".", "detour"]), max_size=3))
        spelled.append(part)
    spelled += data.draw(st.lists(st.sampled_from(["", "."]), max_size=2))
    text = "/".join(f"{data.draw(names)}/.." if p == "detour" else p for p in spelled)
    assert clean(text) == parts
    assert clean("/" + text) == parts


@SETTINGS
@given(clean_paths, st.sampled_from([chr(c) for c in range(32)] + ["\x7f"]), st.data())
def test_a_control_character_anywhere_is_refused(parts, bad, data):
    name = data.draw(names)
    at = data.draw(st.integers(0, len(name)))
    with pytest.raises(BadRequest):
        clean(join(parts + (name[:at] + bad + name[at:],)))


def test_limits_of_names_depth_and_encoding():
    clean("/" + "x" * MAX_NAME_BYTES)
    with pytest.raises(BadRequest):
        clean("/" + "x" * (MAX_NAME_BYTES + 1))
    with pytest.raises(BadRequest):
        clean("/" + "é" * (MAX_NAME_BYTES // 2 + 1))       # counted in UTF-8 bytes
    assert len(clean("/d" * MAX_DEPTH)) == MAX_DEPTH
    with pytest.raises(BadRequest):
        clean("/d" * (MAX_DEPTH + 1))
    assert clean("/d" * (MAX_DEPTH + 1) + "/..") == ("d",) * MAX_DEPTH    # depth once resolved
    with pytest.raises(BadRequest):
        clean(b"/caf\xe9")                                   # Latin-1, not UTF-8
    with pytest.raises(BadRequest):
        clean("/\udcff")                                     # a lone surrogate
