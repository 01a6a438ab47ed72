"""Five-field cron with Vixie semantics, evaluated on a zone's wall clock (DESIGN §7, SCH-1/SCH-2).

Pure: stdlib only, no database, no APScheduler (its ``from_crontab`` is not cron: see
``reference/cron.md``). The scheduler asks this module *when* a schedule fires; the run table's
unique ``(schedule_id, scheduled_for)`` key makes each fire idempotent.

Syntax (crontab(5), Vixie/cronie): ``minute hour day-of-month month day-of-week``; ``*``, ``a``,
``a-b``, ``*/n``, ``a-b/n``, ``a/n`` (= ``a-max/n``, a cronie extension), lists ``a,b``; month
names ``jan``-``dec`` and day names ``sun``-``sat`` in any case; Sunday is 0 and 7 (so a range
ending on Sunday, ``fri-sun`` or ``5-0``, means ``5-7``). When both day fields are restricted
(neither starts with ``*``) a day matches if EITHER matches, otherwise both must. Macros
``@yearly @annually @monthly @weekly @daily @midnight @hourly``; ``@reboot`` is rejected (a
schedule fires on time, never at start-up). Expressions that can never fire are rejected too.

DST rule: fires are computed on the local wall clock, then mapped to UTC.

* Every wall-clock label (date, hour, minute) that matches fires at most once. A label repeated by
  a fall-back transition fires at its first occurrence (``fold=0``) only.
* A label skipped by a spring-forward transition fires once, at the first instant after the gap
  (the transition itself: 02:30 where clocks jump 02:00->03:00 fires at 03:00 local). Several
  skipped labels, and a label at the gap's end (03:00), collapse into that one fire.

For wildcard schedules (``0 * * * *``, ``*/15 * * * *``) this deliberately differs from Vixie
cron, which runs jobs whose minute or hour starts with ``*`` for each elapsed minute, so in both
passes of a repeated hour.
Here ``*/15 * * * *`` in Europe/Athens on the fall-back night (04:00 EEST -> 03:00 EET) fires
03:00, 03:15, 03:30 and 03:45 EEST, stays silent through the second 03:00-03:59 (EET), then fires
04:00 EET: one real hour has no fire, because every label in it already ran and the design says a
repeated wall-clock time fires once (two runs both stamped "03:15" would read as a duplicate, and
the UTC idempotency key cannot catch them). That silent hour is the only elapsed time lost; on
the spring-forward night nothing real is lost (02:45 EET is followed 15 minutes later by the
gap fire at 04:00 EEST).
"""

from __future__ import annotations

import bisect
import functools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

__all__ = [
    "CronError",
    "CronExpression",
    "TimezoneError",
    "fires_between",
    "next_fires",
    "parse_cron",
    "validate_timezone",
]

_MAX_EXPRESSION_LENGTH = 512
# A satisfiable schedule fires at least once in this many days after its previous match: the
# rarest shape (Feb 29 that is also a given weekday) recurs within 40 years, 2100 not being leap.
_HORIZON = timedelta(days=366 * 100)
_ONE_DAY = timedelta(days=1)

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTH_TITLES = ("January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December")
DAY_TITLES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
# Longest month lengths, February counting leap years.
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_DIGITS = re.compile(r"[0-9]+")
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
# Present in some tzdata installs but not a place: the host's own zone, or a placeholder.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


class CronError(ValueError):
    """An invalid or never-firing expression; ``field`` names the part at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class TimezoneError(ValueError):
    """Not an IANA time zone name this host knows."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.message = message
        self.name = name


@dataclass(frozen=True, slots=True)
class _Field:
    key: str  # the ``CronError.field`` value
    label: str  # how messages name it
    low: int
    high: int
    names: tuple[str, ...] = ()  # jan=1 ... dec=12; sun=0 ... sat=6
    name_hint: str = ""


_FIELDS = (
    _Field("minute", "minute", 0, 59),
    _Field("hour", "hour", 0, 23),
    _Field("day_of_month", "day-of-month", 1, 31),
    _Field("month", "month", 1, 12, _MONTH_NAMES, "a month name jan-dec"),
    _Field("day_of_week", "day-of-week", 0, 7, _DAY_NAMES, "a day name sun-sat"),
)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed expression. Value tuples are sorted; Sunday is 0 in ``days_of_week``."""

    source: str  # what the user wrote, stripped
    fields: tuple[str, str, str, str, str]  # the five fields after macro expansion, lower case
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    # Vixie's DOM_STAR/DOW_STAR: a day field starting with "*" makes the day test an AND.
    dom_star: bool
    dow_star: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom_ok = day.day in self.days_of_month
        dow_ok = (day.weekday() + 1) % 7 in self.days_of_week
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def matches(self, wall: datetime) -> bool:
        """Whether a wall-clock time (its date, hour and minute) matches."""
        return wall.minute in self.minutes and wall.hour in self.hours and self.matches_day(wall.date())


# -- parsing (SCH-1) -----------------------------------------------------------------------------


def parse_cron(expr: str) -> CronExpression:
    """Parse and validate a 5-field expression or macro; raises ``CronError``."""
    if not isinstance(expr, str):
        raise CronError("cron expression must be a string", "expression")
    source = expr.strip()
    if not source:
        raise CronError("cron expression is empty", "expression")
    if len(source) > _MAX_EXPRESSION_LENGTH:
        raise CronError(f"cron expression is longer than {_MAX_EXPRESSION_LENGTH} characters",
                        "expression")
    text = source
    if source.startswith("@"):
        text = _expand_macro(source)
    parts = text.lower().split()
    if len(parts) != 5:
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}",
            "expression",
        )
    values = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    dow = tuple(sorted({0 if d == 7 else d for d in values[4]}))  # 7 is Sunday too
    cron = CronExpression(
        source=source,
        fields=(parts[0], parts[1], parts[2], parts[3], parts[4]),
        minutes=values[0],
        hours=values[1],
        days_of_month=values[2],
        months=values[3],
        days_of_week=dow,
        dom_star=parts[2].startswith("*"),
        dow_star=parts[4].startswith("*"),
    )
    _check_satisfiable(cron)
    return cron


def _expand_macro(source: str) -> str:
    word = source.split()[0].lower()
    if word == "@reboot":
        raise CronError("@reboot is not supported: a schedule fires at set times, not at start-up",
                        "expression")
    if word not in _MACROS:
        known = ", ".join(sorted(_MACROS))
        raise CronError(f"unknown macro {source.split()[0]!r}; use one of {known}", "expression")
    if len(source.split()) != 1:
        raise CronError(f"{word} must be the whole expression", "expression")
    return _MACROS[word]


def _parse_field(text: str, spec: _Field) -> tuple[int, ...]:
    found: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"{spec.label} list {text!r} has an empty item", spec.key)
        found.update(_parse_item(item, spec))
    return tuple(sorted(found))


def _parse_item(item: str, spec: _Field) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _DIGITS.fullmatch(step_text):
            raise CronError(f"{spec.label} step {step_text!r} in {item!r} is not a number", spec.key)
        step = int(step_text) if len(step_text) <= 6 else 10**6
        span = spec.high - spec.low + 1
        if step < 1:
            raise CronError(f"{spec.label} step in {item!r} must be at least 1", spec.key)
        if step > span:
            raise CronError(
                f"{spec.label} step {step} in {item!r} is larger than the range "
                f"{spec.low}-{spec.high}",
                spec.key,
            )
    if base == "*":
        return range(spec.low, spec.high + 1, step)
    if base.startswith("*"):
        raise CronError(f"{spec.label} item {item!r}: '*' may only be followed by '/step'", spec.key)
    if not base:
        raise CronError(f"{spec.label} item {item!r} has no value before '/'", spec.key)
    first_text, dash, last_text = base.partition("-")
    first = _value(first_text, item, spec)
    if dash:
        last = _value(last_text, item, spec)
        if spec.key == "day_of_week" and last == 0:
            last = 7  # "fri-sun" / "5-0": Sunday is also 7, so the intent is unambiguous
        if first > last:
            raise CronError(
                f"{spec.label} range {base!r} runs backwards; wrap-around ranges are not "
                f"supported (write e.g. {first_text}-{spec.high},{spec.low}-{last_text})",
                spec.key,
            )
    else:
        # "a/n" runs from a to the field's maximum; a bare "a" is just a.
        last = spec.high if slash else first
    return range(first, last + 1, step)


def _value(token: str, item: str, spec: _Field) -> int:
    if token in spec.names:
        return spec.names.index(token) + (1 if spec.key == "month" else 0)
    if not _DIGITS.fullmatch(token):
        if not token:
            raise CronError(f"{spec.label} item {item!r} is incomplete", spec.key)
        what = f"a number {spec.low}-{spec.high}" + (f" or {spec.name_hint}" if spec.names else "")
        raise CronError(f"{spec.label} value {token!r} is not {what}", spec.key)
    if len(token) > 6 or not spec.low <= int(token) <= spec.high:
        raise CronError(f"{spec.label} {token} is out of range {spec.low}-{spec.high}", spec.key)
    return int(token)


def _check_satisfiable(cron: CronExpression) -> None:
    """Reject expressions that can never fire (e.g. ``0 0 30 2 *``) at parse time.

    In OR mode any weekday of any allowed month will do. In AND mode a valid (month, day) pair
    suffices: over the years each one falls on every weekday, Feb 29 included.
    """
    if not (cron.dom_star or cron.dow_star):
        return
    if any(day <= _MAX_DAYS[month - 1] for month in cron.months for day in cron.days_of_month):
        return
    months = join_words([MONTH_TITLES[m - 1] for m in cron.months], "or")
    raise CronError(
        f"day-of-month {cron.fields[2]} never occurs in {months}, so this schedule would never fire",
        "day_of_month",
    )


# -- time zones (SCH-1) --------------------------------------------------------------------------


@functools.cache
def _known_zones() -> frozenset[str]:
    # Scans the tz database once (~80 ms); membership also rejects "posix/...", "right/..." copies.
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; raises ``TimezoneError`` for anything else."""
    if not isinstance(name, str) or not name:
        raise TimezoneError("time zone is empty; use an IANA name such as Europe/Athens", str(name))
    shown = name if len(name) <= 64 else name[:64] + "..."
    if not _ZONE_NAME.fullmatch(name) or name not in _known_zones():
        hint = next((z for z in _known_zones() if z.lower() == name.lower()), None)
        extra = f" (did you mean {hint}?)" if hint else "; use an IANA name such as Europe/Athens"
        raise TimezoneError(f"unknown time zone {shown!r}{extra}", name)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:  # listed but unreadable
        raise TimezoneError(f"time zone {shown!r} cannot be loaded: {exc}", name) from exc


def _zone(tz: str | tzinfo) -> tzinfo:
    return validate_timezone(tz) if isinstance(tz, str) else tz


def as_cron(expr: str | CronExpression) -> CronExpression:
    return expr if isinstance(expr, CronExpression) else parse_cron(expr)


# -- firing (SCH-2) ------------------------------------------------------------------------------


def next_fires(
    expr: str | CronExpression, tz: str | tzinfo, after: datetime, count: int
) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, as aware UTC datetimes.

    ``tz`` is an IANA name or a PEP 495 tzinfo (``ZoneInfo``, ``UTC``). DST follows the
    module rule: a repeated wall-clock time fires once (first occurrence), a skipped one fires
    once at the first instant after the gap. Raises ``CronError`` if the expression stops firing
    (only possible near year 9999: never-firing expressions are rejected by ``parse_cron``).
    """
    if count < 0:
        raise ValueError("count must not be negative")
    cron, zone = as_cron(expr), _zone(tz)
    _require_aware(after, "after")
    found: list[datetime] = []
    if count == 0:
        return found
    for instant in _fires(cron, zone, after):
        found.append(instant)
        if len(found) == count:
            return found
    raise CronError(f"{cron.source!r} has no fire time after {after.isoformat()}", "expression")


def fires_between(
    expr: str | CronExpression, tz: str | tzinfo, start: datetime, end: datetime
) -> list[datetime]:
    """Fire times with ``start < t <= end`` as aware UTC datetimes (catch-up after downtime).

    Same DST rule as ``next_fires``; the cost grows with the number of fires in the window.
    """
    cron, zone = as_cron(expr), _zone(tz)
    _require_aware(start, "start")
    _require_aware(end, "end")
    found: list[datetime] = []
    if end <= start:
        return found
    for instant in _fires(cron, zone, start):
        if instant > end:
            break
        found.append(instant)
    return found


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _fires(cron: CronExpression, zone: tzinfo, after: datetime) -> Iterator[datetime]:
    """Distinct fire instants strictly after ``after``, ascending.

    Wall-clock labels are visited in ascending order, and the label -> instant mapping (fold=0 for
    repeated labels, gap end for skipped ones) never decreases, so the instants come out sorted
    and a collapsed gap shows up as an equal neighbour. Every label before the floor of
    ``after``'s own wall clock maps to an instant <= ``after``, so the walk starts there.
    """
    after_utc = after.astimezone(UTC)
    wall = after_utc.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)
    last = after_utc
    for label in _labels(cron, wall):
        instant = _instant(label, zone)
        if instant > last:
            last = instant
            yield instant


def _labels(cron: CronExpression, start: datetime) -> Iterator[datetime]:
    """Matching naive wall-clock times >= ``start``, ascending; whole days and months skipped.

    Stops when nothing matched for ``_HORIZON`` or the calendar ends (year 9999).
    """
    day = start.date()
    give_up = day + _HORIZON if day <= date.max - _HORIZON else date.max
    first = True
    while day <= give_up:
        if day.month not in cron.months:
            nxt = _next_month_start(day, cron.months)
            if nxt is None:
                return
            day, first = nxt, False
            continue
        if cron.matches_day(day):
            hours: tuple[int, ...] = cron.hours
            if first:
                hours = hours[bisect.bisect_left(hours, start.hour):]
            for hour in hours:
                minutes: tuple[int, ...] = cron.minutes
                if first and hour == start.hour:
                    minutes = minutes[bisect.bisect_left(minutes, start.minute):]
                for minute in minutes:
                    yield datetime(day.year, day.month, day.day, hour, minute)
            give_up = day + _HORIZON if day <= date.max - _HORIZON else date.max
        if day == date.max:
            return
        day, first = day + _ONE_DAY, False


def _next_month_start(day: date, months: tuple[int, ...]) -> date | None:
    later = [m for m in months if m > day.month]
    if later:
        return date(day.year, later[0], 1)
    if day.year == date.max.year:
        return None
    return date(day.year + 1, months[0], 1)


def _instant(label: datetime, zone: tzinfo) -> datetime:
    """Map a wall-clock label to its fire instant (aware UTC) under the module's DST rule."""
    before = label.replace(tzinfo=zone, fold=0).utcoffset()
    after = label.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None  # a tzinfo without offsets is not a zone
    # PEP 495: in a repeated interval fold=0 is the first occurrence (the larger offset); in a
    # gap fold=0 carries the offset before the jump, fold=1 the one after, so before < after.
    if before >= after:
        return (label - before).replace(tzinfo=UTC)
    return _gap_end(label, zone, before, after)


def _gap_end(label: datetime, zone: tzinfo, before: timedelta, after: timedelta) -> datetime:
    """The transition instant that skipped ``label``: the first instant after the gap.

    It lies in (label - after, label - before]; bisect on whole seconds (transitions are on
    whole seconds) for the first instant whose offset is no longer ``before``.
    """
    epoch = datetime(1970, 1, 1)
    low = int((label - after - epoch).total_seconds())  # still the old offset
    high = int((label - before - epoch).total_seconds())  # already the new offset
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, UTC)


def join_words(words: list[str], last: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"
