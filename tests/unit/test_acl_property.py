"""Properties of the access decision (auth/acl.py), the pure rule both protocols'
rights come from: rights are inherited downwards and only add up, nothing is allowed
without a grant, and a grant never reaches a sibling (or a name that merely starts
the same way) of the folder it names.

Hypothesis builds sets of grants and paths over a few look-alike names ('a', 'ab',
'a b', 'b'), so that a rule comparing strings instead of path components would show."""
from hypothesis import given, settings, strategies as st

from strongroom.auth import acl

NAMES = ["a", "ab", "a b", "b", "A"]
paths = st.lists(st.sampled_from(NAMES), max_size=4).map(tuple)
rights = st.sets(st.sampled_from(acl.RIGHTS), min_size=1).map(
    lambda s: "".join(r for r in acl.RIGHTS if r in s))
grants = st.builds(acl.Grant, paths, rights)
grant_sets = st.lists(grants, max_size=5)
asked = st.sampled_from(acl.RIGHTS + acl.LIST)
SETTINGS = settings(max_examples=400, deadline=None)


def on_the_way(path, target) -> bool:
    """`path` is `target` or one of its folders, or lies below it."""
    n = min(len(path), len(target))
    return path[:n] == target[:n]


@SETTINGS
@given(grant_sets, paths, paths)
def test_rights_are_inherited_by_everything_below(gs, path, below):
    assert set(acl.rights_at(gs, path)) <= set(acl.rights_at(gs, path + below))


@SETTINGS
@given(grant_sets, grants, paths, asked)
def test_another_grant_only_adds(gs, extra, path, right):
    assert set(acl.rights_at(gs, path)) <= set(acl.rights_at(gs + [extra], path))
    if acl.decide(gs, path, right) == "ok":
        assert acl.decide(gs + [extra], path, right) == "ok"


@SETTINGS
@given(grant_sets, paths)
def test_the_order_of_grants_does_not_matter(gs, path):
    assert acl.rights_at(gs, path) == acl.rights_at(list(reversed(gs)), path)
    for right in acl.RIGHTS + acl.LIST:
        assert acl.decide(gs, path, right) == acl.decide(list(reversed(gs)), path, right)


@SETTINGS
@given(paths, asked)
def test_nothing_is_allowed_or_even_seen_without_a_grant(path, right):
    assert acl.rights_at((), path) == ""
    assert acl.decide((), path, right) == "hidden"
    assert not acl.visible((), path) and not acl.visible((), path, is_dir=False)


@SETTINGS
@given(grant_sets, paths, asked)
def test_ok_needs_a_grant_on_the_path_or_above_it(gs, path, right):
    """...except listing a folder on the way down to a grant (which shows folders only)."""
    if acl.decide(gs, path, right) != "ok":
        return
    above = [g for g in gs if path[:len(g.path)] == g.path]
    wanted = "r" if right == acl.LIST else right
    granted = any(wanted in g.rights or "m" in g.rights for g in above)
    assert granted or (right == acl.LIST and acl.leads_to_grant(gs, path))


@SETTINGS
@given(grant_sets, grants, paths, asked)
def test_a_grant_never_reaches_past_its_own_folder(gs, extra, path, right):
    """Off the way to `extra.path`, adding `extra` changes no right and no decision but
    one: creating a name in a folder that became visible is 'denied', not 'hidden'."""
    if on_the_way(path, extra.path):
        return
    assert acl.rights_at(gs + [extra], path) == acl.rights_at(gs, path)
    before, after = acl.decide(gs, path, right), acl.decide(gs + [extra], path, right)
    if before != after:
        assert (right, before, after) == ("w", "hidden", "denied")
        assert on_the_way(path[:-1], extra.path)


@SETTINGS
@given(grants, st.sampled_from(NAMES), paths, asked)
def test_a_sibling_of_a_granted_folder_is_never_opened(grant, other, below, right):
    if not grant.path or other == grant.path[-1]:
        return
    sibling = grant.path[:-1] + (other,) + below
    assert acl.rights_at([grant], sibling) == ""
    assert acl.decide([grant], sibling, right) != "ok"
    assert not acl.visible([grant], sibling, is_dir=False)


@SETTINGS
@given(paths, paths, st.sampled_from(["m", "rm", "wm", "rwdm"]))
def test_manage_implies_every_right_below(path, below, given_rights):
    assert acl.rights_at([acl.Grant(path, given_rights)], path + below) == acl.RIGHTS
