"""Which versions of a file retention removes: the rules as pure functions (no
database, no I/O, no clock: `now` is an argument).

Rules, in this order (`to_remove`):
1. every version younger than `keep_all` is kept;
2. after that the THINNING table applies, measured from `keep_all`: a version whose age
   past keep_all is below a row's first number is thinned to one per span of that row's
   second number (default: one per hour for a day, one per day up to 30 days, one per
   week after that). The one kept in a span is the NEWEST version of that span. Spans are
   fixed slices of the calendar (UTC: hours, days, weeks from Monday 00:00), not slices
   counted from `now`, and each width divides the next, so a version kept now stays kept
   as time passes until it ages into a coarser row, where it goes only if a newer version
   shares its (wider) span -- the result is stable;
3. a version older than `max_age` is removed (even if keep_all is longer);
4. of what is left, the oldest go until at most `max_versions` remain;
and whatever the rules say, the two newest versions of a file (by created_at, then id)
and pinned versions are never removed.

`policy` merges the [retention] config with a client's own options (clients.retention:
a JSON object of the options it overrides, in seconds, bytes and counts; null: no
limit). `parse_overrides` reads the command line's form ("keep_all=7d,max_versions=20")
with the config file's own converters.
"""
import json
import math
from dataclasses import dataclass, fields
from typing import Callable, Sequence

from strongroom.config import SCHEMA, Config
from strongroom.config import converters as conv

HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0

# (up to this age past keep_all, keep one version per span this wide); the last row has
# no end. Every width divides the next one (see the module docstring: stability).
THINNING: tuple[tuple[float, float], ...] = ((DAY, HOUR), (30 * DAY, DAY), (math.inf, WEEK))

# Spans start at multiples of their width from this instant: 1970-01-05 00:00 UTC, a
# Monday, so weekly spans run Monday to Sunday (days and hours are unaffected).
SPAN_ORIGIN = 4 * DAY


@dataclass(frozen=True)
class Policy:
    keep_all: float                 # seconds: every version younger than this is kept
    max_age: float | None           # seconds; None: no age limit
    max_versions: int | None        # per file; None: no limit
    trash_days: float               # seconds a deleted item is kept
    history_quota: int | None       # bytes of versions+trash per client; None: no budget
    interval: float                 # seconds between maintenance runs (from config only)


@dataclass(frozen=True)
class VersionFacts:
    id: int
    created_at: float
    size: int
    pinned: bool


# What a client may set for itself (interval is the appliance's own).
OVERRIDABLE = ("keep_all", "max_age", "max_versions", "trash_days", "history_quota")
# The stored form (seconds, counts, bytes as numbers) read back with these converters.
_STORED: dict[str, Callable[[object], conv.Value]] = {
    "keep_all": conv.positive_duration, "max_age": conv.positive_duration,
    "max_versions": conv.positive_int, "trash_days": conv.positive_duration,
    "history_quota": conv.budget}
_MAY_BE_NONE = ("max_age", "max_versions", "history_quota")


def policy(config: Config, overrides: str | None) -> Policy:
    """The [retention] settings with a client's stored overrides (clients.retention,
    NULL: none) applied. Raises ValueError if the stored text is not what
    `stored_overrides` writes."""
    values: dict[str, object] = {f.name: getattr(config.retention, f.name)
                                 for f in fields(Policy)}
    values.update(read_overrides(overrides))
    return Policy(keep_all=_number(values["keep_all"]), max_age=_limit(values["max_age"]),
                  max_versions=_count(values["max_versions"]),
                  trash_days=_number(values["trash_days"]),
                  history_quota=_count(values["history_quota"]),
                  interval=_number(values["interval"]))


def _number(value: object) -> float:
    assert isinstance(value, (int, float)), value     # the converters made it
    return float(value)


def _limit(value: object) -> float | None:
    return None if value is None else _number(value)


def _count(value: object) -> int | None:
    assert value is None or isinstance(value, int), value
    return value


# The unit of each option's value, as `effective` names it.
UNITS = {"keep_all": "seconds", "max_age": "seconds", "max_versions": "count",
         "trash_days": "seconds", "history_quota": "bytes"}


def effective(config: Config, overrides: str | None) -> dict[str, dict[str, object]]:
    """{option: {UNIT: value (None: no limit), "own": whether the client set it}} for
    every option a client may set, e.g. {"keep_all": {"seconds": 604800.0, "own": True}}."""
    own, values = read_overrides(overrides), policy(config, overrides)
    return {name: {UNITS[name]: getattr(values, name), "own": name in own}
            for name in OVERRIDABLE}


def read_overrides(text: str | None) -> dict[str, object]:
    """A client's stored overrides as {option: value} (None: no limit)."""
    if text is None:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise ValueError(f"stored retention settings are not JSON: {text[:80]!r}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"stored retention settings are not an object: {text[:80]!r}")
    values: dict[str, object] = {}
    for name, value in raw.items():
        if name not in _STORED:
            raise ValueError(f"stored retention settings name an unknown option {name!r}")
        if value is None and name in _MAY_BE_NONE:
            values[name] = None
            continue
        try:
            values[name] = _STORED[name](value)
        except ValueError as e:
            raise ValueError(f"stored retention option {name}: {e}") from None
    return values


def stored_overrides(values: dict[str, object]) -> str | None:
    """The text `read_overrides` reads back; None (NULL) for no overrides."""
    return json.dumps(dict(sorted(values.items()))) if values else None


class Default:
    """A value of `parse_overrides`: the option goes back to the [retention] default."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = Default()


def parse_overrides(text: str) -> dict[str, object]:
    """{option: value} from "keep_all=7d,max_versions=20,history_quota=5GiB": values
    through the config file's converters (seconds, counts, bytes; None for 'none' where
    the option allows it), or DEFAULT for 'OPTION=default'. The SPEC 'default' alone
    gives DEFAULT for every option. Raises ValueError with one line naming the part
    that is wrong."""
    text = text.strip()
    if text.lower() == "default":
        return {name: DEFAULT for name in OVERRIDABLE}
    values: dict[str, object] = {}
    for part in text.split(","):
        name, eq, raw = (p.strip() for p in part.partition("="))
        if not eq or not name or not raw:
            raise ValueError(f"expected OPTION=VALUE pairs separated by commas, such as "
                             f"keep_all=7d,max_versions=20 (or 'default'); got {part.strip()!r}")
        if name not in OVERRIDABLE:
            raise ValueError(f"unknown retention option {name!r}: expected one of "
                             f"{', '.join(OVERRIDABLE)}")
        if name in values:
            raise ValueError(f"retention option {name} is given twice")
        values[name] = DEFAULT if raw.lower() == "default" else _converted(name, raw)
    return values


def _converted(name: str, raw: str) -> conv.Value:
    try:
        return SCHEMA["retention"][name].convert(raw)
    except ValueError as e:
        if raw.lower() == "none":
            raise ValueError(f"retention option {name} cannot be none") from None
        raise ValueError(f"retention option {name}: {e}") from None


def to_remove(versions: Sequence[VersionFacts], now: float, policy: Policy) -> set[int]:
    """Ids of the versions of ONE file (all of them, any order) that retention removes
    at `now` (see the module docstring). Never one of the two newest, never a pinned one."""
    newest_first = sorted(versions, key=lambda v: (v.created_at, v.id), reverse=True)
    protected = {v.id for v in newest_first[:2]} | {v.id for v in versions if v.pinned}
    representative = _newest_per_span(newest_first)
    removed = {v.id for v in newest_first
               if not _survives(v, now, policy, representative)} - protected
    if policy.max_versions is not None:
        left = [v for v in newest_first if v.id not in removed]
        excess = len(left) - policy.max_versions
        for v in reversed(left):        # oldest first
            if excess <= 0:
                break
            if v.id not in protected:
                removed.add(v.id)
                excess -= 1
    return removed


def _newest_per_span(newest_first: Sequence[VersionFacts]) -> dict[tuple[float, int], int]:
    """{(width, span): id of the newest version in it} for every width of THINNING."""
    newest: dict[tuple[float, int], int] = {}
    for v in newest_first:
        for _up_to, width in THINNING:
            newest.setdefault((width, span(v.created_at, width)), v.id)
    return newest


def _survives(v: VersionFacts, now: float, policy: Policy,
              representative: dict[tuple[float, int], int]) -> bool:
    """Rules 1-3 for one version (protection and max_versions are the caller's)."""
    age = now - v.created_at
    if policy.max_age is not None and age > policy.max_age:
        return False
    width = thinning_width(age, policy.keep_all)
    return width is None or representative[(width, span(v.created_at, width))] == v.id


def thinning_width(age: float, keep_all: float) -> float | None:
    """The span width a version of this age is thinned to; None: younger than keep_all."""
    if age < keep_all:
        return None
    past = age - keep_all
    return next(width for up_to, width in THINNING if past < up_to)


def span(created_at: float, width: float) -> int:
    """The number of the calendar span of `width` seconds that `created_at` falls in."""
    return math.floor((created_at - SPAN_ORIGIN) / width)


def _check_table() -> None:
    widths = [w for _u, w in THINNING]
    ends = [u for u, _w in THINNING]
    if ends[-1] != math.inf or ends != sorted(ends) or \
            any(b % a for a, b in zip(widths, widths[1:])):
        raise RuntimeError("THINNING: ends must rise to inf and each width divide the next")


_check_table()
