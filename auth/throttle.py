"""Brute-force throttling rules: pure functions over one counter's state.

A counter (one per account, one per source address) counts failed logins. Past
`delay_after` failures every further attempt waits `delay` seconds; past
`block_after` the counter blocks for `block_seconds`, doubling with each further
failure up to `block_max`. A counter with no failure for `forget_after` seconds
starts again from zero. The caller stores the state and applies the verdict.

Attempts still being checked (`pending`) count as failures for the verdict, so
that many attempts made at once cannot all pass a gate that one failure later
would have closed.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    delay_after: int = 3
    delay: float = 1.0
    block_after: int = 10
    block_seconds: float = 60.0
    block_max: float = 3600.0
    forget_after: float = 3600.0


@dataclass(frozen=True)
class State:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


def current(state: State, policy: Policy, now: float) -> State:
    """`state` with old failures forgotten."""
    if state.failures and now - state.last_failure > policy.forget_after \
            and now >= state.blocked_until:
        return State()
    return state


def verdict(state: State, policy: Policy, now: float, pending: int = 0) -> tuple[bool, float]:
    """(blocked, seconds to wait before answering) for a login attempt now, with
    `pending` other attempts of the same counter still being checked."""
    state = current(state, policy, now)
    if now < state.blocked_until:
        return True, 0.0
    if pending and state.failures + pending >= policy.block_after:
        return True, 0.0
    count = state.failures + pending
    return False, policy.delay if count >= policy.delay_after else 0.0


def after_failure(state: State, policy: Policy, now: float) -> State:
    state = current(state, policy, now)
    failures = state.failures + 1
    blocked_until = state.blocked_until
    if failures >= policy.block_after:
        extra = min(failures - policy.block_after, 30)
        blocked_until = now + min(policy.block_seconds * 2 ** extra, policy.block_max)
    return State(failures, now, blocked_until)
