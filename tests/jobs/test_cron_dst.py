"""jobs.cron across DST transitions (SCH-2), in 15 zones, 2026-2028.

Transitions are not hard-coded: they are found by scanning each zone's UTC offset in the host's
tz database, then checked against the rule in jobs/cron.py: a repeated wall-clock time fires once
(first occurrence), a skipped one fires once at the first instant after the gap.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.cron import CronExpression, fires_between, next_fires, parse_cron

SCAN_START = datetime(2026, 1, 1, tzinfo=UTC)
SCAN_END = datetime(2029, 1, 1, tzinfo=UTC)

DST_ZONES = [
    "Europe/Athens",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "Europe/London",
    "America/Santiago",  # transitions at local midnight
    "Australia/Sydney",  # southern hemisphere: the gap is in October
    "America/Los_Angeles",
    "Africa/Cairo",  # gap at 00:00, repeat at 23:00 of the previous day
    "Antarctica/Troll",  # 2-hour shift (+00 / +02)
    "America/St_Johns",  # -03:30 / -02:30
    "America/Havana",  # gap at 00:00
    "Europe/Dublin",  # "negative DST" in tzdata; the offsets are still +00 / +01
]
NO_DST_ZONES = ["Asia/Kolkata", "Asia/Tehran"]  # Iran dropped DST in 2022 (tzdata 2022b)
ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Transition:
    zone: str
    at: datetime  # the UTC instant the new offset takes effect
    before: timedelta
    after: timedelta

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def is_gap(self) -> bool:
        return self.after > self.before

    @property
    def interval(self) -> tuple[datetime, datetime]:
        """Naive local [start, end): the wall-clock times skipped (gap) or repeated (fold)."""
        naive = self.at.replace(tzinfo=None)
        return naive + min(self.before, self.after), naive + max(self.before, self.after)

    @property
    def middle(self) -> datetime:
        start, end = self.interval
        return start + ((end - start) // 2 // ONE_MINUTE) * ONE_MINUTE

    def __str__(self) -> str:
        kind = "gap" if self.is_gap else "fold"
        return f"{self.zone}-{self.at.astimezone(self.tz).date()}-{kind}"


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


@functools.cache
def scan(zone: str) -> tuple[Transition, ...]:
    """Every offset change in [SCAN_START, SCAN_END): daily steps, then bisection to the second."""
    tz, found = ZoneInfo(zone), []
    day = SCAN_START
    while day < SCAN_END:
        nxt = day + timedelta(days=1)
        if _offset(tz, day) != _offset(tz, nxt):
            low, high = int(day.timestamp()), int(nxt.timestamp())
            while high - low > 1:
                mid = (low + high) // 2
                if _offset(tz, datetime.fromtimestamp(mid, UTC)) == _offset(tz, day):
                    low = mid
                else:
                    high = mid
            at = datetime.fromtimestamp(high, UTC)
            found.append(Transition(zone, at, _offset(tz, at - timedelta(seconds=1)), _offset(tz, at)))
        day = nxt
    return tuple(found)


ALL = [t for zone in DST_ZONES for t in scan(zone)]
GAPS = [t for t in ALL if t.is_gap]
FOLDS = [t for t in ALL if not t.is_gap]


def _local(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz)


def _label(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall-clock minute an instant shows."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _daily(at: datetime | time) -> str:
    return f"{at.minute} {at.hour} * * *"


def _midnight_before(day: date, days: int, tz: ZoneInfo) -> datetime:
    # Local noon minus 12 h is never inside a transition and lands before that day's first fire.
    return datetime.combine(day - timedelta(days=days), time(12), tz) - timedelta(hours=12, minutes=1)


def oracle(cron: CronExpression, tr: Transition, low: datetime, high: datetime) -> list[datetime]:
    """The rule, brute force: walk every real UTC minute in (low, high], fire at the first instant
    showing each matching wall-clock label; plus one fire at the gap's end if a skipped label
    matches. Independent of the module's label walk and its label -> instant mapping."""
    fires: set[datetime] = set()
    seen: set[datetime] = set()
    minute = low.replace(second=0, microsecond=0) + ONE_MINUTE
    while minute <= high:
        label = _label(minute, tr.tz)
        if cron.matches(label) and label not in seen:
            seen.add(label)
            fires.add(minute)
        minute += ONE_MINUTE
    if tr.is_gap and low < tr.at <= high:
        start, end = tr.interval
        skipped = start
        while skipped < end:
            if cron.matches(skipped):
                fires.add(tr.at)
                break
            skipped += ONE_MINUTE
    return sorted(fires)


# SCH-2: the table itself: enough zones, and a scan that sees what zoneinfo says.
def test_the_transition_table() -> None:
    assert len(DST_ZONES) + len(NO_DST_ZONES) >= 10
    for zone in DST_ZONES:
        found = scan(zone)
        # two changes a year, alternating direction, each moving the wall clock
        assert len(found) == 6, (zone, found)
        assert [t.at.year for t in found] == [2026, 2026, 2027, 2027, 2028, 2028]
        assert all(a.is_gap != b.is_gap for a, b in itertools.pairwise(found))
        assert {o for t in found for o in (t.before, t.after)} == {found[0].before, found[0].after}
    for zone in NO_DST_ZONES:
        assert scan(zone) == ()
    # Cross-check with the dates verified in reference/cron.md (Athens 2026: 03:00 -> 04:00 on
    # Sun 2026-03-29, 04:00 -> 03:00 on Sun 2026-10-25).
    athens = scan("Europe/Athens")
    assert athens[0].interval == (datetime(2026, 3, 29, 3), datetime(2026, 3, 29, 4))
    assert athens[1].interval == (datetime(2026, 10, 25, 3), datetime(2026, 10, 25, 4))
    # The unusual shifts are what the zones were chosen for.
    assert {t.after - t.before for t in scan("Australia/Lord_Howe")} == {
        timedelta(minutes=30), timedelta(minutes=-30)}
    assert {t.after - t.before for t in scan("Antarctica/Troll")} == {
        timedelta(hours=2), timedelta(hours=-2)}
    assert {t.before for t in scan("Pacific/Chatham")} == {
        timedelta(hours=12, minutes=45), timedelta(hours=13, minutes=45)}


# SCH-2: a daily job at a wall time skipped by the gap fires once that day, at the gap's end.
@pytest.mark.parametrize("tr", GAPS, ids=str)
def test_daily_job_inside_the_gap_fires_once_at_the_first_instant_after_it(tr: Transition) -> None:
    label = tr.middle
    assert datetime.combine(label.date(), label.time(), tr.tz).astimezone(UTC).astimezone(tr.tz) \
        .replace(tzinfo=None) != label  # really skipped: it does not survive a round trip
    day = label.date()
    fires = next_fires(_daily(label), tr.zone, _midnight_before(day, 3, tr.tz), 7)
    assert [_local(f, tr.tz).date() for f in fires] == [day + timedelta(days=n) for n in range(-3, 4)]
    assert [f for f in fires if _local(f, tr.tz).date() == day] == [tr.at]
    assert _label(tr.at, tr.tz) == tr.interval[1]  # the first instant after the gap, on the wall
    for fire in fires:
        if fire != tr.at:
            assert _label(fire, tr.tz).time() == label.time()
            assert _offset(tr.tz, fire) == (tr.before if fire < tr.at else tr.after)
    assert fires == sorted(set(fires))


# SCH-2: a daily job at a wall time the fold repeats fires once that day, at its first occurrence.
@pytest.mark.parametrize("tr", FOLDS, ids=str)
def test_daily_job_inside_the_repeated_interval_fires_once(tr: Transition) -> None:
    label = tr.middle
    first, second = label - tr.before, label - tr.after  # both instants show this wall time
    first, second = first.replace(tzinfo=UTC), second.replace(tzinfo=UTC)
    assert _label(first, tr.tz) == _label(second, tr.tz) == label and first < tr.at <= second
    day = label.date()
    fires = next_fires(_daily(label), tr.zone, _midnight_before(day, 3, tr.tz), 7)
    assert [_local(f, tr.tz).date() for f in fires] == [day + timedelta(days=n) for n in range(-3, 4)]
    assert [f for f in fires if _local(f, tr.tz).date() == day] == [first]
    assert second not in fires
    assert all(_label(f, tr.tz).time() == label.time() for f in fires)
    # Resuming from inside the repeat (after the first fire) does not fire the repeat again.
    assert next_fires(_daily(label), tr.zone, first, 1)[0] == first + timedelta(days=1) + (
        tr.before - tr.after)
    assert next_fires(_daily(label), tr.zone, second - ONE_MINUTE, 1) == next_fires(
        _daily(label), tr.zone, first, 1)


# SCH-2: a daily job at an ordinary time fires once a day across the change, with the new offset.
@pytest.mark.parametrize("tr", ALL, ids=str)
@pytest.mark.parametrize("wall", [time(12, 0), time(7, 30), time(18, 45)])
def test_daily_job_at_a_normal_time_keeps_its_wall_clock(tr: Transition, wall: time) -> None:
    start, end = tr.interval
    day = start.date()
    for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
        assert not start <= datetime.combine(d, wall) < end  # the time is really ordinary
    fires = next_fires(_daily(wall), tr.tz, _midnight_before(day, 4, tr.tz), 9)
    assert [_local(f, tr.tz).date() for f in fires] == [day + timedelta(days=n) for n in range(-4, 5)]
    for fire in fires:
        assert _label(fire, tr.tz).time() == wall
        assert _offset(tr.tz, fire) == (tr.before if fire < tr.at else tr.after)
    assert all(b - a in (timedelta(days=1), timedelta(days=1) + tr.before - tr.after)
               for a, b in itertools.pairwise(fires))


def _expressions(tr: Transition) -> list[str]:
    start, end = tr.interval
    return [
        "* * * * *",
        "*/15 * * * *",
        "*/30 * * * *",
        "0 * * * *",
        "45 * * * *",
        "10,50 * * * *",
        _daily(tr.middle),
        _daily(start),  # the first skipped / first repeated minute
        _daily(end),  # the gap's end / the first minute after the repeat
        _daily(start - ONE_MINUTE),
        _daily(end - ONE_MINUTE),
        f"{tr.middle.minute} */2 * * *",
    ]


# SCH-2: around every transition, many shapes: the output equals the brute-force rule, is strictly
# increasing, never repeats a wall-clock label, and fires_between / next_fires agree.
@pytest.mark.parametrize("tr", ALL, ids=str)
def test_every_shape_matches_the_brute_force_rule(tr: Transition) -> None:
    low, high = tr.at - timedelta(hours=4), tr.at + timedelta(hours=4)
    for expr in _expressions(tr):
        cron = parse_cron(expr)
        expected = oracle(cron, tr, low, high)
        got = fires_between(cron, tr.tz, low, high)
        assert got == expected, expr
        assert all(a < b for a, b in itertools.pairwise(got)), expr
        labels = [_label(f, tr.tz) for f in got]
        assert len(labels) == len(set(labels)), expr
        assert next_fires(cron, tr.tz, low, len(got)) == got, expr


# SCH-2: resuming from any instant near a transition (as a restarted scheduler does) gives the
# same next fire as the uninterrupted sequence.
@pytest.mark.parametrize("tr", ALL, ids=str)
def test_resuming_anywhere_gives_the_same_next_fire(tr: Transition) -> None:
    low, high = tr.at - timedelta(hours=3), tr.at + timedelta(hours=3)
    for expr in ("*/15 * * * *", "0 * * * *", _daily(tr.middle)):
        cron = parse_cron(expr)
        sequence = next_fires(cron, tr.tz, low - timedelta(days=1), 200)
        probe = low
        while probe <= high:
            expected = next(f for f in sequence if f > probe)
            assert next_fires(cron, tr.tz, probe, 1) == [expected], (expr, probe)
            probe += timedelta(minutes=7, seconds=13)


# SCH-2: the wildcard rule stated in the module docstring, pinned on Athens 2026.
def test_athens_quarter_hourly_across_both_2026_transitions() -> None:
    athens = ZoneInfo("Europe/Athens")
    spring = fires_between("*/15 * * * *", athens, datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
                           datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    assert [_local(f, athens).isoformat() for f in spring] == [
        "2026-03-29T02:45:00+02:00",
        "2026-03-29T04:00:00+03:00",  # 03:00-03:45 skipped: one fire, at the gap's end
        "2026-03-29T04:15:00+03:00",
        "2026-03-29T04:30:00+03:00",
    ]
    autumn = fires_between("*/15 * * * *", athens, datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
                           datetime(2026, 10, 25, 2, 30, tzinfo=UTC))
    assert [_local(f, athens).isoformat() for f in autumn] == [
        "2026-10-25T02:45:00+03:00",
        "2026-10-25T03:00:00+03:00",
        "2026-10-25T03:15:00+03:00",
        "2026-10-25T03:30:00+03:00",
        "2026-10-25T03:45:00+03:00",
        # the second 03:00-03:45 (+02:00) is silent: those labels already fired
        "2026-10-25T04:00:00+02:00",
        "2026-10-25T04:15:00+02:00",
        "2026-10-25T04:30:00+02:00",
    ]
    hourly = fires_between("0 * * * *", athens, datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
                           datetime(2026, 10, 25, 2, 30, tzinfo=UTC))
    assert [_local(f, athens).isoformat() for f in hourly] == [
        "2026-10-25T03:00:00+03:00", "2026-10-25T04:00:00+02:00"]


# SCH-2: the brief's example: 02:30 where clocks jump 02:00 -> 03:00 fires at 03:00 local.
def test_new_york_0230_fires_at_0300_on_the_spring_forward_day() -> None:
    new_york = ZoneInfo("America/New_York")
    gap = scan("America/New_York")[0]
    assert gap.is_gap and gap.interval == (datetime(2026, 3, 8, 2), datetime(2026, 3, 8, 3))
    fires = next_fires("30 2 * * *", new_york, datetime(2026, 3, 7, 12, tzinfo=UTC), 3)
    assert [_local(f, new_york).isoformat() for f in fires] == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


# SCH-2: zones without DST: one fire a day at the same wall time and offset, for three years.
@pytest.mark.parametrize("zone", NO_DST_ZONES)
def test_zones_without_dst(zone: str) -> None:
    tz = ZoneInfo(zone)
    fires = fires_between("30 2 * * *", zone, SCAN_START, SCAN_END)
    assert len(fires) == (SCAN_END - SCAN_START).days
    assert {_offset(tz, f) for f in fires} == {_offset(tz, SCAN_START)}
    assert {_label(f, tz).time() for f in fires} == {time(2, 30)}
    assert len({_label(f, tz).date() for f in fires}) == len(fires)
