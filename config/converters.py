"""Type converters for config options. Each takes the raw TOML value and returns
the typed value or raises ValueError with a short reason."""
import email.utils
import ipaddress
import math
import re
import urllib.parse
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, TypeAlias

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2,
               "mib": 1024**2, "mb": 1000**2, "g": 1024**3, "gib": 1024**3,
               "gb": 1000**3, "t": 1024**4, "tib": 1024**4, "tb": 1000**4}


def string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer port, got {value!r}")
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} is outside 0..65535")
    return value


def positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def size(value: object) -> int:
    """Accept an integer number of bytes or a string like '10GiB', '512 MiB'."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return _bytes(str(value), 1, value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _SIZE_UNITS:
            return _bytes(m.group(1), _SIZE_UNITS[m.group(2).lower()], value)
    raise ValueError(f"expected a size such as 1048576 or '10GiB', got {value!r}")


# Sizes typed on the command line must say their unit: a bare '10' read as bytes
# made a 10-byte quota. Single letters ('10G') are refused too: GB or GiB?
_STRICT_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
                 "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
SIZE_FORMS = "10GiB, 500MB, 1.5TB (KiB, MiB, GiB, TiB: 1024-based; kB, MB, GB, TB: 1000-based)"


def size_with_unit(value: object) -> int:
    """Bytes from a size that names its unit ('10GiB', '500 MB', '1.5TB'); a number
    alone, or an ambiguous letter ('10G'), is refused. Unlike `size` (the config
    file's, where a bare number is bytes)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", str(value))
    if m is None or m.group(2).lower() not in _STRICT_UNITS:
        raise ValueError(f"expected a size with its unit, such as {SIZE_FORMS}; "
                         f"got {value!r}")
    return _bytes(m.group(1), _STRICT_UNITS[m.group(2).lower()], value)


MAX_SIZE = 2**63 - 1     # what the database's BIGINT columns hold


def _bytes(number: str, unit: int, value: object) -> int:
    """`number` (decimal text) times `unit`, exactly: a float made '4.35MB' 4349999
    bytes, and an OverflowError of 400 digits."""
    n = int(Fraction(number) * unit)
    if n > MAX_SIZE:
        raise ValueError(f"a size of at most {MAX_SIZE} bytes (8 EiB), got {value!r}")
    return n


def describe_size(n: int) -> str:
    """'10.0 GB (10000000000 bytes)' or '10.0 GiB (10737418240 bytes)': in the unit
    family (1000- or 1024-based) that states `n` more exactly, bytes alongside."""
    if n < 1000:
        return f"{n} bytes"
    candidates = []
    for base, units in ((1024, ("KiB", "MiB", "GiB", "TiB")), (1000, ("kB", "MB", "GB", "TB"))):
        power = min(len(units), max(1, int(math.log(n, base) + 1e-9)))
        value = n / base ** power
        candidates.append((abs(value * 10 - round(value * 10)), f"{value:.1f} {units[power - 1]}"))
    closest = min(candidates, key=lambda c: c[0])[1]   # ties: the 1024-based one
    return f"{closest} ({n} bytes)"


def chunk_size(raw: object) -> int:
    value = size(raw)
    if not 64 * 1024 <= value <= 1024 * 1024 or value % 4096:
        raise ValueError("chunk size must be a multiple of 4 KiB between 64 KiB and 1 MiB")
    return value


def log_level(value: object) -> str:
    levels = ("debug", "info", "warning", "error")
    if not isinstance(value, str) or value.lower() not in levels:
        raise ValueError(f"expected one of {', '.join(levels)}, got {value!r}")
    return value.lower()


def choice(*allowed: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value.lower()
    return convert


def listen_address(raw: object) -> str:
    """'' (none), or 'HOST:PORT' ('[::1]:9102' for IPv6); returned as given."""
    value = string(raw).strip()
    if value:
        host_port(value)
    return value


def host_port(value: str) -> tuple[str, int]:
    """('127.0.0.1', 9102) from '127.0.0.1:9102', ('::1', 9102) from '[::1]:9102'."""
    host, sep, number = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not number.isdigit() or not 0 < int(number) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9102, got {value!r}")
    return host, int(number)


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(value: object) -> float:
    """Seconds, from a number or a string like '90s', '30m', '12h', '7d'."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        seconds = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _DURATION_UNITS:
            seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()]
    if seconds is not None and math.isfinite(seconds):    # 'inf', or 400 digits
        return seconds
    raise ValueError(f"expected a duration such as 3600, '30m', '12h' or '7d', got {value!r}")


def positive_duration(value: object) -> float:
    """A duration (see `duration`) longer than zero."""
    seconds = duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than zero, got {value!r}")
    return seconds


def duration_with_unit(value: object) -> float:
    """Seconds, from a string that names its unit: '90d', '12h', '30m', '3600s' (also
    'w', 'min'), longer than zero. For the CLI, where a bare '90' is a trap (seconds?
    days?); durations in the config file keep `duration`."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", value) \
        if isinstance(value, str) else None
    seconds = float(m.group(1)) * _DURATION_UNITS.get(m.group(2).lower(), math.nan) \
        if m else math.nan
    if not math.isfinite(seconds):
        raise ValueError(f"expected a duration with a unit: 90d, 12h, 30m or 3600s "
                         f"(also w, min), got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than zero, got {value!r}")
    return seconds


def describe_period(seconds: float | None) -> str:
    """'2d', '36h', '15m', '90s' (the largest unit that states it exactly, with the
    units `period` reads), '1.5s'; 'none' for None."""
    if seconds is None:
        return "none"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:g}s"


def prefix_length(maximum: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise ValueError(f"expected a prefix length from 0 to {maximum}, got {value!r}")
        return value
    return convert


def non_negative_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class Amount:
    """A size in bytes, or a share of some whole (`fraction`): `of(whole)` in bytes."""
    bytes: int = 0
    fraction: float | None = None

    def of(self, whole: int) -> int:
        return self.bytes if self.fraction is None else int(whole * self.fraction)


def size_or_percent(value: object) -> Amount:
    """A size ('10GiB', bytes) or a percentage of a whole ('5%', '0.5 %')."""
    if isinstance(value, str) and value.strip().endswith("%"):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", value)
        if m is None or float(m.group(1)) > 100:
            raise ValueError(f"expected a percentage from 0% to 100%, got {value!r}")
        return Amount(fraction=float(m.group(1)) / 100)
    try:
        return Amount(bytes=size(value))
    except ValueError:
        raise ValueError(f"expected a size such as '10GiB' or a percentage such as '5%', "
                         f"got {value!r}") from None


def positive_size(raw: object) -> int:
    value = size(raw)
    if value <= 0:
        raise ValueError("expected a size above zero")
    return value


def remote_port(value: object) -> int:
    """A port to connect to: 1..65535 (0, "any port", only makes sense to listen on)."""
    number = port(value)
    if number == 0:
        raise ValueError("port 0 cannot be connected to: expected 1..65535")
    return number


def host_name(raw: object) -> str:
    """'' or a host name or IP address to connect to, without scheme or port."""
    value = string(raw).strip()
    if any(ch.isspace() or not ch.isprintable() for ch in value) or "/" in value:
        raise ValueError(f"expected a host name or address such as mail.example.com, "
                         f"got {raw!r}")
    if ":" in value and not _is_ipv6(value):
        raise ValueError(f"expected a host name without a port (the port is its own "
                         f"option), got {raw!r}")
    return value


def _is_ipv6(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 6
    except ValueError:
        return False


def mail_address(raw: object) -> str:
    """'' or one email address, optionally with a display name ('Firm <files@firm.se>');
    returned as given (stripped)."""
    value = string(raw).strip()
    if value:
        parsed = email.utils.getaddresses([value])
        address = parsed[0][1] if len(parsed) == 1 else ""
        local, at, domain = address.rpartition("@")
        if not (local and at and domain) or \
                any(not ch.isprintable() for ch in value) or \
                any(ch.isspace() for ch in address):
            raise ValueError(f"expected an email address such as files@firm.example or "
                             f"'Firm <files@firm.example>', got {raw!r}")
    return value


def name_patterns(raw: object) -> tuple[str, ...]:
    """A TOML array of glob patterns (fnmatch) matched against file names."""
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"expected an array of patterns such as [\"*.part\", \"~$*\"], "
                         f"got {raw!r}")
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"expected each pattern to be a non-empty string, got {item!r}")
        if any(not ch.isprintable() for ch in item):
            raise ValueError(f"a pattern with a control character: {item!r}")
        if "/" in item:
            raise ValueError(f"a pattern matches a file name, not a path: {item!r}")
    return tuple(raw)


def web_url(raw: object) -> str:
    """'' or an http:// or https:// URL with a host."""
    value = string(raw).strip()
    if value and not _is_web_url(value):
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return value


def _is_web_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
        _ = parts.port          # a port that is not a number raises here
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and \
        not any(ch.isspace() or not ch.isprintable() for ch in value)


def optional(convert: Callable[[object], "Value"]) -> Callable[[object], "Value"]:
    """`convert`, or None (no limit) for the word 'none'."""
    def converted(value: object) -> Value:
        if isinstance(value, str) and value.strip().lower() == "none":
            return None
        return convert(value)
    return converted


def period(value: object) -> float:
    """A retention period in seconds, above zero: a number of seconds (the config
    file's other durations read numbers so too) or a string naming its unit ('2d',
    '12h', '1.5w'); a string without a unit is refused: '7' for keep_all reads as days
    to some and seconds to others."""
    if isinstance(value, str):
        return duration_with_unit(value)
    return positive_duration(value)


def days_or_period(value: object) -> float:
    """Seconds, from a number of days (30 or '30', the way trash_days is told) or a
    period with its unit ('30d', '12h'); above zero."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", value):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) * 86400
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"expected a number of days above zero, got {value!r}")
        return seconds
    try:
        return period(value)
    except ValueError:
        raise ValueError(f"expected a number of days (30) or a duration with a unit "
                         f"('30d', '12h'), above zero; got {value!r}") from None


def count(value: object) -> int:
    """A whole number above zero, also as text ('20', as the command line gives it)."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    return positive_int(value)


def budget(value: object) -> int:
    """Bytes above zero: a number of bytes, or a size naming its unit ('5GiB', '500MB');
    a bare number in a string, or '10G', is refused (see `size_with_unit`)."""
    if isinstance(value, str):
        number = size_with_unit(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a size such as '5GiB', got {value!r}")
    else:
        number = value
    if not 0 < number <= MAX_SIZE:
        raise ValueError(f"expected a size above zero, got {value!r}")
    return number


# What a converter returns: the type of a loaded option's value (config.sections names
# each option's). None: an option set to 'none' (no limit).
Value: TypeAlias = str | int | float | bool | Amount | tuple[str, ...] | None
