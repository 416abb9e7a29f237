"""The pure rules behind logins and folder rights (auth/: acl, throttle, passwords,
totp), table-driven; no database. Their use by the Authenticator is tested in
tests/service/test_auth.py, and over the protocols in tests/e2e/test_e2e_totp.py and
test_e2e_throttle.py."""
import pyotp
import pytest

from strongroom.auth import acl, passwords, throttle, totp

GRANTS = (acl.Grant((), "r"), acl.Grant(("inbox",), "w"), acl.Grant(("staff", "deep"), "rwd"))


@pytest.mark.parametrize("path,right,verdict", [
    ((), "r", "ok"), (("report.pdf",), "r", "ok"), (("report.pdf",), "w", "denied"),
    (("inbox", "a.txt"), "w", "ok"), (("inbox", "a.txt"), "d", "denied"),
    (("staff", "deep", "x"), "d", "ok"), (("staff",), "w", "denied"),
])
def test_acl_inherits_and_adds_up(path, right, verdict):
    assert acl.decide(GRANTS, path, right) == verdict


@pytest.mark.parametrize("path,right,verdict", [
    ((), "l", "ok"),                      # passing through to a granted folder: listing
    ((), "r", "denied"),                  # but never reading what is there
    (("inbox",), "r", "ok"), (("inbox",), "l", "ok"), (("inbox", "x"), "w", "ok"),
    (("private",), "r", "hidden"),        # not listed, so not there
    (("private",), "w", "denied"),        # but creating it in a visible folder: denied
    (("private", "x"), "r", "hidden"),    # below an invisible folder: as if absent
    (("private", "x"), "w", "hidden"),
    ((), "w", "denied"),
])
def test_acl_hides_what_is_not_on_the_way(path, right, verdict):
    grants = (acl.Grant(("inbox",), "rw"),)
    assert acl.decide(grants, path, right) == verdict


def test_acl_the_way_through_shows_folders_not_files():
    grants = (acl.Grant(("proj", "sub"), "r"),)
    assert acl.visible(grants, ("proj",)) and not acl.visible(grants, ("proj",), is_dir=False)
    assert acl.visible(grants, ("proj", "sub", "a.txt"), is_dir=False)


def test_acl_manage_implies_everything_and_nothing_is_default():
    assert acl.rights_at((acl.Grant(("a",), "m"),), ("a", "b")) == "rwdm"
    assert acl.decide((), ("a",), "r") == "hidden"
    assert acl.parse_rights("read, write") == "rw"
    for other in ("execute", "rw", "read write", "list", ""):   # names, nothing else
        with pytest.raises(ValueError, match="read, write, delete, manage"):
            acl.parse_rights(other)


def test_throttle_counts_attempts_in_flight():
    policy = throttle.Policy(delay_after=2, delay=1, block_after=4)
    fresh = throttle.State()
    assert throttle.verdict(fresh, policy, 0.0, pending=1) == (False, 0.0)
    assert throttle.verdict(fresh, policy, 0.0, pending=2) == (False, 1)
    assert throttle.verdict(fresh, policy, 0.0, pending=4) == (True, 0.0)
    done = throttle.State(failures=4, last_failure=0.0, blocked_until=10.0)
    assert throttle.verdict(done, policy, 20.0) == (False, 1)   # a block over: one try
    assert throttle.verdict(done, policy, 20.0, pending=1) == (True, 0.0)


def test_throttle_delays_then_blocks_longer_each_time_and_forgets():
    policy = throttle.Policy(delay_after=2, delay=1, block_after=4, block_seconds=10,
                             block_max=25, forget_after=100)
    s, t = throttle.State(), 1000.0
    verdicts = []
    for _ in range(4):
        verdicts.append(throttle.verdict(s, policy, t))
        s = throttle.after_failure(s, policy, t)
    assert verdicts == [(False, 0.0), (False, 0.0), (False, 1), (False, 1)]
    assert s.blocked_until == t + 10
    assert throttle.verdict(s, policy, t + 9) == (True, 0.0)
    s = throttle.after_failure(s, policy, t + 11)           # the next failure doubles it
    assert s.blocked_until == t + 11 + 20
    s = throttle.after_failure(s, policy, t + 32)
    assert s.blocked_until == t + 32 + 25                   # capped at block_max
    assert throttle.verdict(s, policy, t + 32 + 25 + 101) == (False, 0.0)   # forgotten


def test_generated_passwords_pass_the_policy_even_for_one_letter_logins():
    # A 20-character password holds "a" or "A" about half the time; each must be redrawn.
    for _ in range(200):
        passwords.check_policy("a", passwords.generate_password("a"))


def test_totp_window_is_one_step_each_way():
    secret = totp.new_secret()
    t = 1_700_000_000.0
    step = int(t // 30)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, pyotp.TOTP(secret).at(t + offset * 30), t) \
            == step + offset
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(t - 60), t) is None
    assert totp.matching_step(secret, "12345", t) is None
