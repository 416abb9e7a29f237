"""appliance.service.maintenance_plan, the pure part of a maintenance run, over random
trees (hypothesis): whatever the rules and the budget, a pinned version, a file's
current version and a live file's two newest versions are never removed; a purged
trash item holds no pinned version; a removal for retention is one to_remove names;
and over a history_quota, what the budget leaves is either within it or has nothing
more it may take, and it takes nothing once within."""
from hypothesis import given, settings, strategies as st

from strongroom.appliance.service.maintenance_plan import NodeRow, Tree, VersionRow, plan
from strongroom.appliance.service.retention_rules import Policy, VersionFacts, to_remove

NOW = 1_800_000_000.0
DAY = 86400.0


@st.composite
def trees(draw):
    nodes = [NodeRow(1, None, "", True, None, None)]
    versions = []
    next_version = iter(range(1, 10_000))
    for node_id in range(2, draw(st.integers(2, 12))):
        parent = draw(st.sampled_from([n for n in nodes if n.is_dir]))
        is_dir = draw(st.booleans()) and node_id < 8
        deleted = draw(st.one_of(st.none(), st.floats(NOW - 90 * DAY, NOW)))
        current = None
        if not is_dir:
            for _ in range(draw(st.integers(0, 8))):
                current = next(next_version)
                versions.append(VersionRow(current, node_id,
                                           draw(st.floats(NOW - 400 * DAY, NOW)),
                                           draw(st.integers(0, 1000)),
                                           draw(st.booleans()) and draw(st.booleans()),
                                           f"b{current}"))
            mine = [v for v in versions if v.node_id == node_id]
            current = max(mine, key=lambda v: (v.created_at, v.id)).id if mine else None
        nodes.append(NodeRow(node_id, parent.id, f"n{node_id}", is_dir, current, deleted))
    return Tree(nodes, versions)


policies = st.builds(
    Policy, keep_all=st.floats(1, 10 * DAY), max_age=st.none() | st.floats(DAY, 300 * DAY),
    max_versions=st.none() | st.integers(1, 5), trash_days=st.floats(DAY, 60 * DAY),
    history_quota=st.none() | st.integers(0, 5000), interval=st.just(900.0))


@settings(max_examples=300, deadline=None)
@given(trees(), policies)
def test_never_a_pinned_current_or_newest_version(tree, policy):
    result = plan(tree, policy, NOW)
    gone = {v.id for v in result.all_versions()}
    assert len(gone) == len(result.all_versions())          # nothing twice
    assert not any(tree.version[v].pinned for v in gone)
    purged = set(result.node_ids())
    for node in tree.nodes.values():
        mine = tree.versions.get(node.id, [])
        if node.id in purged or not mine:
            continue
        assert node.current_version_id not in gone
        if not tree.in_trash(node.id):
            assert not {v.id for v in mine[-2:]} & gone
    for item in result.items:
        assert not any(v.pinned for n in item.node_ids for v in tree.versions.get(n, ()))
    for r in result.versions:
        if r.reason == "retention":
            facts = [VersionFacts(v.id, v.created_at, v.size, v.pinned)
                     for v in tree.versions[r.version.node_id]]
            assert r.version.id in to_remove(facts, NOW, policy)


@settings(max_examples=300, deadline=None)
@given(trees(), policies.filter(lambda p: p.history_quota is not None))
def test_the_budget_is_met_or_nothing_more_may_go(tree, policy):
    result = plan(tree, policy, NOW)
    gone, purged = {v.id for v in result.all_versions()}, set(result.node_ids())
    used, takeable = 0, False
    for node in tree.nodes.values():
        if node.id in purged:
            continue
        left = [v for v in tree.versions.get(node.id, []) if v.id not in gone]
        if tree.in_trash(node.id):
            used += sum(v.size for v in left)
            if node.deleted_at is not None and not any(
                    v.pinned for n in tree.below(node.id) for v in tree.versions.get(n, ())):
                takeable = True
        else:
            used += sum(v.size for v in left if v.id != node.current_version_id)
            keep = {v.id for v in left[-2:]} | {node.current_version_id}
            takeable |= any(v.id not in keep and not v.pinned for v in left)
    assert policy.history_quota is not None
    assert used <= policy.history_quota or not takeable
    # and it stopped once within: before its last removal it was over the quota
    taken = [r.version.size for r in result.versions if r.reason == "history budget"] + \
        [sum(v.size for v in i.versions) for i in result.items if i.reason == "history budget"]
    if taken:
        assert used + max(taken) > policy.history_quota
