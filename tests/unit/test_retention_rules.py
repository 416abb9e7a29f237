"""Retention's pure rules (appliance.service.retention_rules): exact outcomes of the
thinning table, max_age, max_versions and the protections by table; then a year of saves
driven by an injected clock through hypothesis (never below the two newest, never a
pinned one, one per span of the table, limits honoured, the kept set stable); then the
policy's sources: [retention] defaults, a client's stored overrides, the CLI spec."""
import math
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from strongroom import config as configmod
from strongroom.appliance.service import retention_rules as rr
from strongroom.appliance.service.retention_rules import Policy, VersionFacts

H, D = 3600.0, 86400.0


def at(text: str) -> float:
    """Seconds since the epoch of 'YYYY-MM-DD HH:MM' in UTC."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp()


def pol(keep_all: float = 2 * D, max_age: float | None = None,
        max_versions: int | None = None) -> Policy:
    return Policy(keep_all=keep_all, max_age=max_age, max_versions=max_versions,
                  trash_days=30 * D, history_quota=None, interval=900.0)


def facts(*times: str, pinned: tuple[int, ...] = ()) -> list[VersionFacts]:
    """Versions numbered 1.. in the order given (ids rise with time)."""
    return [VersionFacts(i, at(t), 100, i in pinned) for i, t in enumerate(times, 1)]


NOW = "2026-03-10 12:00"
TWO_NEWEST = ("2026-03-10 11:00", "2026-03-10 11:30")   # younger than keep_all


@pytest.mark.parametrize("name, times, policy, pinned, removed", [
    ("all younger than keep_all stay",
     ("2026-03-08 12:30", "2026-03-09 01:00", "2026-03-09 01:01", *TWO_NEWEST), pol(), (), set()),
    ("the two newest stay however old",
     ("2020-01-01 00:00", "2020-01-01 00:01"), pol(max_age=D, max_versions=1), (), set()),
    ("hourly past keep_all: the newest of each clock hour",
     ("2026-03-08 10:05", "2026-03-08 10:20", "2026-03-08 10:50", "2026-03-08 11:10",
      *TWO_NEWEST), pol(), (), {1, 2}),
    ("daily from a day past keep_all: the newest of each UTC day",
     ("2026-02-20 09:00", "2026-02-20 17:00", "2026-02-21 08:00", *TWO_NEWEST), pol(), (), {1}),
    ("weekly from 30 days past keep_all: Monday to Sunday weeks",
     ("2025-11-04 09:00", "2025-11-08 09:00", "2025-11-09 23:00", "2025-11-10 01:00",
      *TWO_NEWEST), pol(), (), {1, 2}),
    ("a pinned version outlives the newer one of its span",
     ("2026-03-08 10:05", "2026-03-08 10:50", *TWO_NEWEST), pol(), (1,), set()),
    ("the newest of a span counts even while it is younger than keep_all",
     ("2026-03-09 11:10", "2026-03-09 11:50", *TWO_NEWEST), pol(keep_all=D + 30 * 60), (), {1}),
    ("max_age removes older versions, keep_all notwithstanding",
     ("2026-03-01 12:00", "2026-03-09 12:00", "2026-03-10 10:00", *TWO_NEWEST),
     pol(keep_all=30 * D, max_age=3 * D), (), {1}),
    ("max_age spares the pinned",
     ("2026-03-01 12:00", "2026-03-02 12:00", *TWO_NEWEST), pol(max_age=3 * D), (2,), {1}),
    ("max_versions: the oldest go first",
     ("2026-03-10 06:00", "2026-03-10 07:00", "2026-03-10 08:00", "2026-03-10 09:00",
      *TWO_NEWEST), pol(max_versions=3), (), {1, 2, 3}),
    ("max_versions skips the pinned and takes the next oldest",
     ("2026-03-10 06:00", "2026-03-10 07:00", "2026-03-10 08:00", "2026-03-10 09:00",
      *TWO_NEWEST), pol(max_versions=3), (1,), {2, 3, 4}),
    ("max_versions counts what thinning left",
     ("2026-01-05 10:00", "2026-03-08 10:05", "2026-03-08 10:50", *TWO_NEWEST),
     pol(max_versions=4), (), {2}),
])
def test_exact_outcomes(name, times, policy, pinned, removed):
    versions = facts(*times, pinned=pinned)
    assert rr.to_remove(versions, at(NOW), policy) == removed, name
    assert rr.to_remove(list(reversed(versions)), at(NOW), policy) == removed, "order"


def test_newest_is_by_time_then_id():
    same = at("2020-01-01 00:00")
    versions = [VersionFacts(7, same, 1, False), VersionFacts(5, same, 1, False),
                VersionFacts(6, same, 1, False)]
    assert rr.to_remove(versions, same + 400 * D, pol()) == {5}


def test_the_table_as_data():
    assert rr.THINNING == ((D, H), (30 * D, D), (math.inf, 7 * D))
    assert [rr.thinning_width(age, 2 * D) for age in (0, 2 * D - 1, 2 * D, 3 * D - 1, 3 * D,
                                                      32 * D - 1, 32 * D, 5000 * D)] == \
        [None, None, H, H, D, D, 7 * D, 7 * D]
    assert datetime.fromtimestamp(rr.SPAN_ORIGIN, timezone.utc).strftime("%A %H:%M") == \
        "Monday 00:00"


def test_a_kept_version_stays_kept_within_its_row():
    versions = facts("2026-03-08 10:05", "2026-03-08 10:50", *TWO_NEWEST)
    for minutes in range(0, 20 * 60, 7):    # 20 hours on: still in the hourly row
        assert rr.to_remove(versions[1:], at(NOW) + minutes * 60, pol()) == set()


# -- a year of saves through an injected clock --------------------------------------

YEAR = 365 * D


def a_year_of_gaps(rnd, busy: float) -> list[float]:
    """Seconds between saves for a year: mostly minutes to hours apart (a busy share
    `busy`), else a quiet spell of up to five days."""
    gaps: list[float] = []
    while sum(gaps) < YEAR:
        gaps.append(rnd.uniform(60, 8 * H) if rnd.random() < busy else rnd.uniform(8 * H, 5 * D))
    return gaps


policies = st.builds(pol, keep_all=st.sampled_from([H, D, 2 * D, 7 * D]),
                     max_age=st.sampled_from([None, None, 10 * D, 90 * D, 200 * D]),
                     max_versions=st.sampled_from([None, None, 3, 20, 60]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), busy=st.sampled_from([0.5, 0.9, 0.99]),
       policy=policies, start=st.floats(0, 4e9),
       pin_every=st.sampled_from([0, 7, 50]), run_every=st.integers(1, 5),
       extra=st.lists(st.floats(0, 3 * D), min_size=0, max_size=3))
def test_a_year_of_saves(seed, busy, policy, start, pin_every, run_every, extra):
    """Saves at random gaps; maintenance after every few saves, and sometimes again later
    with no save in between; every run's outcome is checked against the rules."""
    kept: list[VersionFacts] = []
    clock = start
    last_run: tuple[float, set[int]] | None = None
    for i, gap in enumerate(a_year_of_gaps(random.Random(seed), busy), 1):
        clock += gap
        kept.append(VersionFacts(i, clock, i, pin_every > 0 and i % pin_every == 0))
        if i % run_every:
            continue
        for later in [0.0, *extra]:
            now = clock + later
            removed = rr.to_remove(kept, now, policy)
            check_run(kept, removed, now, policy, last_run)
            kept = [v for v in kept if v.id not in removed]
            assert rr.to_remove(kept, now, policy) == set(), "a second run removes nothing"
            last_run = (now, {v.id for v in kept})


def check_run(before, removed, now, policy, last_run):
    newest = sorted(before, key=lambda v: (v.created_at, v.id))[-2:]
    assert not removed & {v.id for v in newest}, "one of the two newest"
    assert not removed & {v.id for v in before if v.pinned}, "a pinned one"
    protected = {v.id for v in newest} | {v.id for v in before if v.pinned}
    left = [v for v in before if v.id not in removed]
    free = [v for v in left if v.id not in protected]
    spans = [(w, rr.span(v.created_at, w)) for v in free
             if (w := rr.thinning_width(now - v.created_at, policy.keep_all))]
    assert len(spans) == len(set(spans)), "two versions kept in one span of the table"
    for up_to, width in rr.THINNING[:-1]:    # at most the table's count per row
        row = [v for v in free if (rr.thinning_width(now - v.created_at, policy.keep_all)
                                   == width)]
        assert len(row) <= up_to / width + 1
    if policy.max_age is not None:
        assert all(now - v.created_at <= policy.max_age for v in free)
    if policy.max_versions is not None:
        assert len(left) <= policy.max_versions or not free
    if last_run is not None:
        check_stable(before, removed, now, policy, last_run)


def check_stable(before, removed, now, policy, last_run):
    """A version the last run kept goes now only for a reason time or a save gave:
    it aged into another row or past max_age, or newer saves took its place among the
    two newest or under max_versions."""
    then, kept_then = last_run
    saved_since = any(v.id not in kept_then for v in before)
    for v in before:
        if v.id not in removed or v.id not in kept_then:
            continue
        aged = rr.thinning_width(then - v.created_at, policy.keep_all) != \
            rr.thinning_width(now - v.created_at, policy.keep_all)
        too_old = policy.max_age is not None and now - v.created_at > policy.max_age
        assert aged or too_old or saved_since, (v, then, now)


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=60, max_value=3 * D), min_size=2, max_size=300),
       policy=st.builds(pol, keep_all=st.sampled_from([H, 2 * D]),
                        max_age=st.sampled_from([None, 100 * D])),
       t1=st.floats(0, 60 * D), t2=st.floats(0, 400 * D), pins=st.sets(st.integers(1, 300)))
def test_pruning_at_two_times_is_pruning_at_the_later(gaps, policy, t1, t2, pins):
    """Without max_versions the outcome depends only on the versions saved and the time:
    a run at t1 then at t2 leaves what one run at t2 leaves (nothing removed early is
    ever 'wanted' later)."""
    versions, clock = [], 0.0
    for i, gap in enumerate(gaps, 1):
        clock += gap
        versions.append(VersionFacts(i, clock, 1, i in pins))
    first, second = clock + t1, clock + t1 + t2

    def prune(vs, now):
        gone = rr.to_remove(vs, now, policy)
        return [v for v in vs if v.id not in gone]
    assert prune(prune(versions, first), second) == prune(versions, second)


# -- where a policy comes from -------------------------------------------------------

def load(tmp_path: Path, text: str = "") -> configmod.Config:
    (tmp_path / "strongroom.toml").write_text(text)
    return configmod.load(tmp_path)


def test_policy_defaults_and_config(tmp_path):
    assert rr.policy(load(tmp_path), None) == Policy(
        keep_all=2 * D, max_age=None, max_versions=None, trash_days=30 * D,
        history_quota=None, interval=900.0)
    cfg = load(tmp_path, '[retention]\nkeep_all = "1w"\nmax_age = "365d"\nmax_versions = 50\n'
               'trash_days = 7\nhistory_quota = "5GiB"\ninterval = "1h"\n')
    assert rr.policy(cfg, None) == Policy(7 * D, 365 * D, 50, 7 * D, 5 * 1024**3, H)


def test_a_clients_overrides_apply_over_the_config(tmp_path):
    cfg = load(tmp_path, '[retention]\nmax_age = "365d"\n')
    text = rr.stored_overrides({"keep_all": 7 * D, "max_age": None, "trash_days": 12 * H})
    assert text == '{"keep_all": 604800.0, "max_age": null, "trash_days": 43200.0}'
    assert rr.policy(cfg, text) == Policy(7 * D, None, None, 12 * H, None, 900.0)
    assert rr.stored_overrides({}) is None


@pytest.mark.parametrize("text", ['[1]', '{"interval": 60}', '{"keep_all": null}',
                                  '{"keep_all": -5}', '{"max_versions": 1.5}', 'nope'])
def test_stored_overrides_that_are_not_ours_are_refused(tmp_path, text):
    with pytest.raises(ValueError):
        rr.policy(load(tmp_path), text)


def test_parse_overrides():
    assert rr.parse_overrides(" keep_all=7d, max_versions=20 ,history_quota=5GiB,"
                              "trash_days=14,max_age=none") == {
        "keep_all": 7 * D, "max_versions": 20, "history_quota": 5 * 1024**3,
        "trash_days": 14 * D, "max_age": None}
    assert rr.parse_overrides("trash_days=12h,max_age=default") == {
        "trash_days": 12 * H, "max_age": rr.DEFAULT}
    assert rr.parse_overrides("default") == {name: rr.DEFAULT for name in rr.OVERRIDABLE}


@pytest.mark.parametrize("spec, says", [
    ("", "OPTION=VALUE"), ("keep_all", "OPTION=VALUE"), ("keep_all=", "OPTION=VALUE"),
    ("keep_all=7d,", "OPTION=VALUE"), ("interval=1h", "unknown retention option 'interval'"),
    ("keep_all=7d,keep_all=8d", "given twice"), ("keep_all=none", "cannot be none"),
    ("trash_days=none", "cannot be none"), ("keep_all=7", "keep_all: expected a duration"),
    ("keep_all=0d", "keep_all"), ("keep_all=-1d", "keep_all"), ("max_age=soon", "max_age"),
    ("max_versions=0", "max_versions"), ("max_versions=2.5", "max_versions"),
    ("history_quota=5", "history_quota"), ("history_quota=0GiB", "history_quota"),
    ("history_quota=5G", "history_quota"), ("trash_days=0", "trash_days"),
    ("trash_days=-3", "trash_days"),
])
def test_parse_overrides_refuses_with_one_line(spec, says):
    with pytest.raises(ValueError) as e:
        rr.parse_overrides(spec)
    assert says in str(e.value) and "\n" not in str(e.value)
